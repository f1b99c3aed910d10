/**
 * The master's /jobs routes (docs/protocol.md, "Jobs"), and what an upload into a job must pass before its body is
 * read: the job exists and is not cancelled, the op agrees, and a key the job already has gives back its task.
 */
import express, { type Router } from 'express';
import type { Logger } from 'winston';
import { HttpError, methodNotAllowed } from '../../shared/errors.ts';
import { parseBody, parseWith } from '../../shared/validate.ts';
import { DEFAULT_OP, type Op } from '../ops.ts';
import { submitQuery } from '../protocol.ts';
import { IDEMPOTENCY_HEADER, createJobBody, idempotencyKeySchema, jobIdParams, jobListQuery, jobTasksQuery, jobUploadQuery } from '../jobProtocol.ts';
import { emptyCounts, toJobView, type JobRecord, type JobStore } from './jobStore.ts';

const CANCEL_REASON = 'cancelled: its job was cancelled';

async function found(jobs: JobStore, id: number): Promise<JobRecord> {
  const job = await jobs.get(id);
  if (!job) throw new HttpError(404, 'job_not_found', `no job ${id}`);
  return job;
}

export function jobRoutes(jobs: JobStore, hooks: { log: Logger; resumed: () => void }): Router {
  const { log } = hooks;
  const router = express.Router();
  const view = async (job: JobRecord) => toJobView(job, await jobs.summary(job.id));

  router.post('/jobs', async (req, res) => {
    const { name, op } = parseBody(createJobBody, req.body);
    const job = await jobs.create(name, op);
    log.info(`job ${job.id} created: ${JSON.stringify(name)}, ${op}`);
    res.status(201).location(`/jobs/${job.id}`).json(toJobView(job, { counts: emptyCounts(), bytes: 0, resultBytes: 0, startedAt: null, lastFinishedAt: null }));
  });

  router.get('/jobs', async (req, res) => {
    const { limit } = parseWith(jobListQuery, req.query);
    res.json({ jobs: await Promise.all((await jobs.list(limit)).map(view)) });
  });

  router.get('/jobs/:id', async (req, res) => {
    const { id } = parseWith(jobIdParams, req.params, 'invalid_job_id');
    res.json(await view(await found(jobs, id)));
  });

  router.get('/jobs/:id/tasks', async (req, res) => {
    const { id } = parseWith(jobIdParams, req.params, 'invalid_job_id');
    const { after, limit } = parseWith(jobTasksQuery, req.query);
    await found(jobs, id);
    const tasks = await jobs.tasks(id, after, limit);
    res.json({ tasks, next: tasks.length === limit ? tasks[tasks.length - 1].id : null });
  });

  for (const [action, state] of [['pause', 'paused'], ['resume', 'active']] as const) {
    router.post(`/jobs/:id/${action}`, async (req, res) => {
      const { id } = parseWith(jobIdParams, req.params, 'invalid_job_id');
      await found(jobs, id);
      const job = (await jobs.setState(id, state))!;
      if (job.state === 'cancelled') throw new HttpError(409, 'job_cancelled', `job ${id} was cancelled; it can't be ${state === 'paused' ? 'paused' : 'resumed'}`);
      log.info(`job ${id} ${state === 'paused' ? 'paused: its pending tasks wait' : 'resumed'}`);
      // Its pending tasks are claimable again: wake the waiting claims.
      if (state === 'active') hooks.resumed();
      res.json(await view(job));
    });
  }

  router.delete('/jobs/:id', async (req, res) => {
    const { id } = parseWith(jobIdParams, req.params, 'invalid_job_id');
    await found(jobs, id);
    const { job, failed } = (await jobs.cancel(id, CANCEL_REASON))!;
    log.info(`job ${id} cancelled: ${failed.length} unfinished task(s) failed`);
    res.json({ ...(await view(job)), cancelledTasks: failed.length });
  });

  router.all('/jobs', methodNotAllowed(['GET', 'POST']));
  router.all('/jobs/:id', methodNotAllowed(['GET', 'DELETE']));
  router.all('/jobs/:id/tasks', methodNotAllowed(['GET']));
  for (const action of ['pause', 'resume']) router.all(`/jobs/:id/${action}`, methodNotAllowed(['POST']));
  return router;
}

/** Where an upload goes: its op, its job and key, and the task the job already has for that key (then no new one). */
export interface UploadTarget {
  op: Op;
  jobId?: number;
  idempotencyKey?: string;
  existingTaskId?: number;
}

/** Checks POST /tasks?op=&job= and its Idempotency-Key header, before a byte of the body is read. */
export async function uploadTarget(jobs: JobStore, query: unknown, keyHeader: string | undefined): Promise<UploadTarget> {
  const { op } = parseWith(submitQuery, query, 'invalid_op');
  const { job: jobId } = parseWith(jobUploadQuery, query, 'invalid_job_id');
  if (jobId === undefined) {
    if (keyHeader !== undefined) throw new HttpError(400, 'job_required', `${IDEMPOTENCY_HEADER} is kept per job: give ?job=ID too`);
    return { op: op ?? DEFAULT_OP };
  }
  const job = await jobs.get(jobId);
  if (!job) throw new HttpError(404, 'job_not_found', `no job ${jobId}`);
  if (job.state === 'cancelled') throw new HttpError(409, 'job_cancelled', `job ${jobId} was cancelled; it takes no more images`);
  if (op && op !== job.op) throw new HttpError(400, 'op_mismatch', `job ${jobId} is ${job.op}, not ${op}`);
  if (keyHeader === undefined) return { op: job.op, jobId };
  const key = parseWith(idempotencyKeySchema, keyHeader, 'invalid_idempotency_key');
  return { op: job.op, jobId, idempotencyKey: key, existingTaskId: await jobs.taskByKey(jobId, key) };
}
