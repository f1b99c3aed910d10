import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Router } from 'express';
import type { Logger } from 'winston';
import { startService, type Service } from '../../shared/service.ts';
import { withLogShipping } from '../../logservice/client.ts';
import { HttpError, methodNotAllowed } from '../../shared/errors.ts';
import { classifyUpstream, type UpstreamFailure } from '../../shared/apiError.ts';
import { GradesApiError, GradesClient } from '../client.ts';
import { limitBody, limitBytes } from '../../shared/bodyLimit.ts';
import { cspNonce } from '../../shared/pageHeaders.ts';
import { newGradeSchema, parseStudentId } from '../protocol.ts';
import { PORTAL_DEFAULT_PORT, PORTAL_SERVICE, portalDefaults, type PortalOptions } from './config.ts';
import { emptyGradeForm, errorPage, studentPage, studentsPage, type ErrorPage, type GradeField, type GradeFormState } from './pages.ts';

const FORM_LIMIT = '16kb';
const RETRY_SECONDS = 5;

class PageError extends Error {
  constructor(readonly page: ErrorPage) {
    super(page.title);
  }
}

function studentIdFrom(param: string | string[]): number {
  const raw = String(param);
  const id = parseStudentId(raw);
  if (id === undefined) {
    throw new PageError({ status: 404, title: 'No such student', explanation: `There is no student with the id “${raw.slice(0, 40)}”.` });
  }
  return id;
}

/** The add-a-grade form, checked with the API's own schema; errors come back by field, values as typed. */
function readGradeForm(body: unknown): { form: GradeFormState; grade?: ReturnType<typeof newGradeSchema.parse> } {
  const raw = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const text = (name: GradeField) => (typeof raw[name] === 'string' ? (raw[name] as string) : '');
  const form: GradeFormState = { values: { title: text('title'), type: text('type'), score: text('score') }, errors: {} };
  const scoreText = form.values.score.trim();
  const score = scoreText === '' ? undefined : Number(scoreText);
  if (score !== undefined && !Number.isFinite(score)) {
    form.errors.score = 'must be a number';
  }
  const result = newGradeSchema.safeParse({ title: form.values.title, type: form.values.type, score });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const name = issue.path[0] as GradeField;
      form.errors[name] ??= issue.message;
    }
  }
  if (Object.keys(form.errors).length > 0) return { form };
  return { form, grade: result.data };
}

const UNREACHABLE: ErrorPage = {
  status: 503,
  title: 'The grades service cannot be reached',
  explanation:
    'Every grades instance the registry lists refused the connection: they have probably just stopped, and the registry is about to notice. ' +
    'This page works again as soon as an instance is back.',
  retrySeconds: RETRY_SECONDS,
};

/** Explains, for a person, why grades could not give what a page needed (GET shows, POST saves a grade). */
function upstreamPage(failure: UpstreamFailure, method: string): ErrorPage {
  switch (failure.kind) {
    case 'no_provider':
      return {
        status: 503,
        title: 'The grades service is not available',
        explanation:
          'No instance of the grades service is registered right now, so the portal cannot show students or save grades. ' +
          'Nothing is lost: grades are kept by the grades service, and this page works again as soon as an instance is back.',
        retrySeconds: RETRY_SECONDS,
      };
    case 'answered':
      if (failure.status === 404) return { status: 404, title: 'No such student', explanation: failure.message ?? 'grades has no such student' };
      if (failure.status === 503) {
        return {
          status: 503,
          title: 'The grades database is not available',
          explanation:
            method === 'GET'
              ? 'The grades service cannot reach its database just now. Nothing is lost; this page works again as soon as the database is back.'
              : 'The grades service cannot reach its database just now, so the grade may not have been saved. Open the student again once the database is back to see.',
          retrySeconds: RETRY_SECONDS,
        };
      }
      return { status: 502, title: 'The grades service answered with an error', explanation: failure.message ?? `grades answered ${failure.status}` };
    case 'timeout':
      return {
        status: 504,
        title: 'The grades service is too slow',
        explanation:
          method === 'GET'
            ? 'The grades service did not answer in time. It may be overloaded; try again in a moment.'
            : 'The grades service did not answer in time, so the grade may or may not have been saved. Open the student again to see.',
        retrySeconds: method === 'GET' ? RETRY_SECONDS : undefined,
      };
    case 'lost':
      if (method === 'GET') return UNREACHABLE; // a page that only reads is safe to ask for again
      return {
        status: 502,
        title: 'The grade may not have been saved',
        explanation: 'The connection to the grades service broke while the grade was being sent. Open the student again to see whether it was saved.',
      };
    case 'refused':
      return UNREACHABLE;
  }
}

/** Explains, for a person, why a page could not be made. */
function pageFor(err: unknown, req: Request): ErrorPage | undefined {
  if (err instanceof PageError) return err.page;
  const failure = classifyUpstream(err);
  if (failure) return upstreamPage(failure, req.method);
  const typed = err as { type?: string; status?: number } | undefined;
  if (typed?.type === 'entity.too.large' || typed?.type === 'parameters.too.many' || (err instanceof HttpError && err.status === 413)) {
    return { status: 413, title: 'The form is too large', explanation: `A grade form is at most ${FORM_LIMIT}.` };
  }
  if (err instanceof HttpError) {
    return { status: err.status, title: err.status === 405 ? 'Method not allowed' : 'Request refused', explanation: err.message };
  }
  if (typed?.status && typed.status >= 400 && typed.status < 500) {
    return { status: typed.status, title: 'Request refused', explanation: 'The request could not be read.' };
  }
  return undefined;
}

function htmlErrors(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    const page = pageFor(err, req);
    if (!page) {
      logger.error(`page ${req.method} ${req.path} failed: ${(err as Error)?.stack ?? err}`);
    } else if (page.status >= 500) {
      logger.warn(`page ${req.method} ${req.path}: ${page.status} ${page.title} (${(err as Error)?.message ?? err})`);
    }
    if (res.headersSent) {
      next(err);
      return;
    }
    const shown = page ?? { status: 500, title: 'Something went wrong', explanation: 'The portal could not make this page. The error has been logged.' };
    if (err instanceof HttpError) for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
    if (shown.retrySeconds) res.setHeader('Retry-After', String(shown.retrySeconds));
    res.status(shown.status).type('html').send(errorPage(cspNonce(res), shown));
  };
}

/** The teacher portal's pages; grades come only through the given client. */
export function portalRoutes(grades: GradesClient, logger: Logger): Router {
  const router = express.Router();
  const noStore: RequestHandler = (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };

  router.get('/', (_req, res) => res.redirect(302, '/students'));

  router.get('/students', noStore, async (_req, res) => {
    res.type('html').send(studentsPage(cspNonce(res), await grades.listStudents()));
  });

  router.get('/students/:id', noStore, async (req, res) => {
    const student = await grades.getStudent(studentIdFrom(req.params.id));
    const added = typeof req.query.added === 'string' ? parseStudentId(req.query.added) : undefined;
    res.type('html').send(studentPage(cspNonce(res), student, emptyGradeForm(), added));
  });

  router.post(
    // Cross-site posts never get here: createApp refuses them for every service (shared/crossSite.ts).
    '/students/:id/grades',
    limitBody(express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 20 }), limitBytes(FORM_LIMIT), ['application/x-www-form-urlencoded']),
    async (req, res) => {
      const id = studentIdFrom(req.params.id);
      const { form, grade } = readGradeForm(req.body);
      if (grade) {
        try {
          const stored = await grades.addGrade(id, grade);
          logger.info(`grade ${stored.id} added for student ${id} from the portal`);
          res.redirect(303, `/students/${id}?added=${stored.id}`);
          return;
        } catch (err) {
          if (!(err instanceof GradesApiError && err.status === 400)) throw err;
          form.errors.form = err.message;
        }
      }
      const student = await grades.getStudent(id);
      res.status(400).type('html').send(studentPage(cspNonce(res), student, form));
    },
  );

  router.all('/', methodNotAllowed(['GET']));
  router.all('/students', methodNotAllowed(['GET']));
  router.all('/students/:id', methodNotAllowed(['GET']));
  router.all('/students/:id/grades', methodNotAllowed(['POST']));
  router.use((req, _res, next) => next(new PageError({ status: 404, title: 'Page not found', explanation: `There is no page at ${req.path}.` })));
  router.use(htmlErrors(logger));
  return router;
}

export async function startPortal(options: PortalOptions = {}): Promise<Service> {
  return startService(withLogShipping({
    name: PORTAL_SERVICE,
    requiredServices: ['grades', 'log'],
    config: options.config,
    defaultPort: PORTAL_DEFAULT_PORT,
    logger: options.logger,
    clientOptions: { timeoutMs: options.gradesTimeoutMs ?? portalDefaults.gradesTimeoutMs },
    routes: (svc) => portalRoutes(new GradesClient(svc.client('grades')), svc.logger),
  }));
}

