import express, { type RequestHandler, type Router } from 'express';
import type { Logger } from 'winston';
import { startService, type Service } from '../shared/service.ts';
import { withLogShipping } from '../logservice/client.ts';
import { withHousekeeping } from '../shared/housekeeping.ts';
import { sqliteHousekeepingDefaults } from '../shared/sqliteBackup.ts';
import { serviceConfig } from '../shared/config.ts';
import { GRADES_DEFAULT_PORT, GRADES_SERVICE, type GradesOptions } from './config.ts';
import { HttpError, methodNotAllowed } from '../shared/errors.ts';
import { parseBody } from '../shared/validate.ts';
import { prom } from '../shared/metrics.ts';
import { createLogger } from '../shared/logger.ts';
import { newGradeSchema, parseStudentId } from './protocol.ts';
import { StoreUnavailableError, type GradeStore } from './store.ts';
import { openGradeStore } from './openStore.ts';

/** A grade is three short fields: anything near this size is not a grade. */
export const GRADES_BODY_LIMIT = '16kb';

function studentIdFrom(raw: string): number {
  const id = parseStudentId(raw);
  if (id === undefined) throw new HttpError(404, 'student_not_found', `no student with id "${raw.slice(0, 40)}" (ids are positive integers)`);
  return id;
}

function gradeIdFrom(studentId: number, raw: string): number {
  const id = parseStudentId(raw);
  if (id === undefined) throw new HttpError(404, 'grade_not_found', `student ${studentId} has no grade "${raw.slice(0, 40)}" (ids are positive integers)`);
  return id;
}

/** Which of the two is missing, for the 404 of a grade that was not found: the student, or only the grade. */
async function missingGrade(store: GradeStore, studentId: number, gradeId: number): Promise<HttpError> {
  if (!(await store.getStudent(studentId))) return new HttpError(404, 'student_not_found', `no student with id ${studentId}`);
  return new HttpError(404, 'grade_not_found', `student ${studentId} has no grade ${gradeId}`);
}

/** A store that is away answers 503 with Retry-After, in the JSON error shape; the next request tries it again. */
function storeCall<P extends Record<string, string>>(handler: RequestHandler<P>): RequestHandler<P> {
  return async (req, res, next) => {
    try {
      await handler(req, res, next);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      throw new HttpError(503, 'store_unavailable', err.message, { 'Retry-After': String(err.retryAfterSeconds) });
    }
  };
}

/** GET /students, GET /students/:id, POST /students/:id/grades, PUT and DELETE /students/:id/grades/:gradeId; every other method is a 405. */
export function gradesRoutes(store: GradeStore, svc: Service): Router {
  const requests = new prom.Counter({
    name: 'grades_requests_total',
    help: 'Requests to the grades API by route',
    labelNames: ['route'],
    registers: [svc.metrics],
  });
  const added = new prom.Counter({ name: 'grades_added_total', help: 'Grades stored', registers: [svc.metrics] });
  const router = express.Router();

  router.get('/students', storeCall(async (_req, res) => {
    requests.inc({ route: 'list' });
    res.json(await store.listStudents());
  }));

  router.get('/students/:id', storeCall(async (req, res) => {
    requests.inc({ route: 'get' });
    const id = studentIdFrom(req.params.id);
    const student = await store.getStudent(id);
    if (!student) throw new HttpError(404, 'student_not_found', `no student with id ${id}`);
    res.json(student);
  }));

  router.post('/students/:id/grades', storeCall(async (req, res) => {
    requests.inc({ route: 'add' });
    const id = studentIdFrom(req.params.id);
    const input = parseBody(newGradeSchema, req.body, 'invalid_grade');
    // Resolves after the commit: the 201 is durable.
    const grade = await store.addGrade(id, input);
    if (!grade) throw new HttpError(404, 'student_not_found', `no student with id ${id}`);
    added.inc();
    svc.logger.info(`grade added for student ${id}: ${grade.type} "${grade.title}" ${grade.score}`);
    res.status(201).json(grade);
  }));

  router.put('/students/:id/grades/:gradeId', storeCall(async (req, res) => {
    requests.inc({ route: 'update' });
    const id = studentIdFrom(req.params.id);
    const gradeId = gradeIdFrom(id, req.params.gradeId);
    const input = parseBody(newGradeSchema, req.body, 'invalid_grade');
    const grade = await store.updateGrade(id, gradeId, input);
    if (!grade) throw await missingGrade(store, id, gradeId);
    svc.logger.info(`grade ${gradeId} of student ${id} updated: ${grade.type} "${grade.title}" ${grade.score}`);
    res.json(grade);
  }));

  router.delete('/students/:id/grades/:gradeId', storeCall(async (req, res) => {
    requests.inc({ route: 'delete' });
    const id = studentIdFrom(req.params.id);
    const gradeId = gradeIdFrom(id, req.params.gradeId);
    if (!(await store.deleteGrade(id, gradeId))) throw await missingGrade(store, id, gradeId);
    svc.logger.info(`grade ${gradeId} of student ${id} deleted`);
    res.status(204).end();
  }));

  router.all('/students', methodNotAllowed(['GET']));
  router.all('/students/:id', methodNotAllowed(['GET']));
  router.all('/students/:id/grades', methodNotAllowed(['POST']));
  router.all('/students/:id/grades/:gradeId', methodNotAllowed(['PUT', 'DELETE']));
  return router;
}

/** A running grades service: the registered service plus its store, closed after the last request. */
export class GradesService {
  constructor(
    readonly service: Service,
    readonly store: GradeStore,
  ) {}

  get url(): string {
    return this.service.url;
  }

  get logger(): Logger {
    return this.service.logger;
  }

  async stop(): Promise<void> {
    try {
      await this.service.stop();
    } finally {
      await this.store.close();
    }
  }
}

export async function startGrades(options: GradesOptions = {}): Promise<GradesService> {
  const config = { ...serviceConfig(GRADES_SERVICE, GRADES_DEFAULT_PORT), ...options.config };
  const logger = options.logger ?? createLogger(GRADES_SERVICE);
  const store = await openGradeStore(options.store ?? { kind: 'sqlite' }, config.dataDir, logger);
  try {
    const service = await startService(withHousekeeping(withLogShipping({
      name: GRADES_SERVICE,
      requiredServices: ['log'],
      config,
      defaultPort: GRADES_DEFAULT_PORT,
      bodyLimit: GRADES_BODY_LIMIT,
      logger,
      routes: (svc) => gradesRoutes(store, svc),
    }), store.housekeepingJobs(config.dataDir, options.sqlite ?? sqliteHousekeepingDefaults)));
    service.logger.info(store.kind === 'sqlite' ? `grades database at ${config.dataDir}` : 'grades database on PostgreSQL (GRADES_STORE=postgres)');
    return new GradesService(service, store);
  } catch (err) {
    await store.close();
    throw err;
  }
}
