/**
 * The master (registers as `imagemaster`): owns the tasks. Uploads are checked at once, stored in
 * `working`, and become pending tasks; workers claim them with a lease (long-poll), renew, complete
 * or fail them. A lapsed lease returns a task to pending; too many attempts or a non-retryable
 * failure leaves it failed with the reason. Completion is idempotent: the first one wins.
 */
import { randomUUID } from 'node:crypto';
import express, { type Response } from 'express';
import { startService, type Service } from '../../shared/service.ts';
import { withLogShipping } from '../../logservice/client.ts';
import { serviceConfig } from '../../shared/config.ts';
import { MASTER_DEFAULT_PORT, MASTER_SERVICE, masterDefaults, type MasterOptions } from './config.ts';
import { HttpError, methodNotAllowed } from '../../shared/errors.ts';
import { parseBody, parseWith } from '../../shared/validate.ts';
import { masterMetrics } from './masterMetrics.ts';
import { claimBody, completeBody, failBody, leaseBody, listQuery, releaseHeldBody, taskIdParams } from '../protocol.ts';
import { StorageClient } from '../storage/client.ts';
import { openTaskStore, type LeaseOutcome } from './taskStore.ts';
import { redactUrl } from '../../shared/postgres.ts';
import { ClaimQueue } from './claims.ts';
import { LeaseReaper } from './leases.ts';
import { storePngUpload } from './upload.ts';
import { discardBody } from '../discard.ts';
import { openJobStore } from './jobStore.ts';
import { jobRoutes, uploadTarget } from './jobRoutes.ts';
import { IDEMPOTENCY_HEADER } from '../jobProtocol.ts';
import { pruneRoutes, retentionJob } from './retention.ts';
import { housekeepingOf, withHousekeeping } from '../../shared/housekeeping.ts';
import { withEvents, eventsOf } from '../../events/client.ts';
import type { TaskView } from '../protocol.ts';
import { currentRequestId } from '../../shared/requestContext.ts';
import { createLogger } from '../../shared/logger.ts';

function leaseRefused(outcome: LeaseOutcome, id: number): HttpError {
  switch (outcome) {
    case 'unknown':
      return new HttpError(404, 'task_not_found', `no task ${id}`);
    case 'not_running':
      return new HttpError(409, 'task_finished', `task ${id} is already done or failed`);
    default:
      return new HttpError(409, 'lease_expired', `task ${id} is not leased to you any more (the lease lapsed or the token is wrong)`);
  }
}

export async function startMaster(options: MasterOptions = {}): Promise<Service> {
  const settings = { ...masterDefaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  const config = { ...serviceConfig(MASTER_SERVICE, MASTER_DEFAULT_PORT), ...options.config };
  const { store } = settings;
  // Before the service exists: waiting for the database at start is said on the console.
  const startLog = createLogger(MASTER_SERVICE);
  let svcLog: Service['logger'] | undefined;
  const tasks = await openTaskStore(
    { kind: store.kind, dataDir: config.dataDir, pg: store.pg },
    { leaseMs: settings.leaseMs, maxAttempts: settings.maxAttempts },
    (message) => (svcLog ?? startLog).warn(message),
  );
  const jobs = await openJobStore({ kind: store.kind, dataDir: config.dataDir, pg: store.pg }, (message) => (svcLog ?? startLog).warn(message));
  let claims!: ClaimQueue;
  let reaper!: LeaseReaper;

  const { housekeeping } = settings;
  const svc = await startService(withHousekeeping(withLogShipping(withEvents({
    name: MASTER_SERVICE,
    requiredServices: ['imagestorage', 'log'],
    defaultPort: MASTER_DEFAULT_PORT,
    config,
    timeouts: { requestTimeoutMs: 120_000 },
    onStop: () => {
      reaper.stop();
      claims.drain();
    },
    routes: (svc) => {
      const storage = new StorageClient(svc.client('imagestorage'));
      const log = svc.logger;
      svcLog = log;
      if (store.pg) log.info(`tasks in PostgreSQL at ${redactUrl(store.pg.url)}`);
      // task.created, task.running, task.done, task.failed: news for the frontends, never a wait (no lease tokens in it).
      const announce = (state: 'created' | 'running' | 'done' | 'failed', task: Pick<TaskView, 'id' | 'op' | 'attempts' | 'error'> | undefined) => {
        if (task) eventsOf(svc).emit(`task.${state}`, { id: task.id, state: state === 'created' ? 'pending' : state, op: task.op, attempts: task.attempts, error: task.error ?? null });
      };
      const { claimWait, completions, lapses, submitted, rejected } = masterMetrics(svc.metrics, { counts: () => tasks.counts(), waiting: () => claims.waiting });

      // Said once per outage, not once per waiting claim.
      let troubleSaid = false;
      const trouble = (what: string) => (err: unknown) => {
        if (troubleSaid) return;
        troubleSaid = true;
        log.warn(`${what}: ${(err as Error).message}`);
        setTimeout(() => (troubleSaid = false), 5_000).unref();
      };
      claims = new ClaimQueue(
        async (workerId) => {
          const task = await tasks.claim(workerId);
          if (task) {
            // Under the upload's id, not the claim's: the claim serves whichever task is next.
            log.info(`task ${task.id} claimed by ${workerId} (attempt ${task.attempt})`, task.traceId ? { requestId: task.traceId } : {});
            announce('running', { id: task.id, op: task.op, attempts: task.attempt, error: null });
            reaper.leased(Date.now() + task.leaseMs);
          }
          return task;
        },
        {
          giveBack: (task) => tasks.release(task.id, task.leaseToken),
          onWaited: (seconds, got) => claimWait.observe({ got_task: String(got) }, seconds),
          onError: trouble('waiting claims could not be served'),
        },
      );
      reaper = new LeaseReaper(
        () => tasks.nextLeaseExpiry(),
        async () => {
          const { returned, failed } = await tasks.expireLeases();
          lapses.inc(returned.length + failed.length);
          if (returned.length) log.warn(`lease lapsed on task(s) ${returned.join(', ')}: back to pending`);
          if (failed.length) log.warn(`lease lapsed on task(s) ${failed.join(', ')} with no attempts left: failed`);
          for (const id of failed) announce('failed', await tasks.get(id));
          if (returned.length) claims.wake();
        },
        trouble('leases could not be checked'),
      );
      // Leases granted before a restart still count: arm the timer for them.
      reaper.schedule();
      // Other masters' uploads, retries and leases (a shared store); the tick is the backstop for a lost notification.
      tasks.watch(
        () => claims.wake(),
        () => {
          claims.wake();
          reaper.schedule();
        },
      );

      const router = express.Router();
      // Before /tasks/:id, which would take "prune" for an id.
      router.use(pruneRoutes({ housekeeping: housekeepingOf(svc), tasks, storage, retentionMs: housekeeping.retentionMs, token: svc.config.registryToken }));

      router.use(jobRoutes(jobs, { log, resumed: () => claims.wake() }));

      router.post('/tasks', async (req, res) => {
        const { op, jobId, idempotencyKey, existingTaskId } = await uploadTarget(jobs, req.query, req.get(IDEMPOTENCY_HEADER));
        if (existingTaskId !== undefined) {
          // The job has this key's task already: the same upload again, answered with it and no new task.
          discardBody(req, settings.maxUploadBytes);
          res.status(200).location(`/tasks/${existingTaskId}`).json(await tasks.get(existingTaskId));
          return;
        }
        const imageKey = randomUUID();
        let upload;
        try {
          upload = await storePngUpload(req, { maxBytes: settings.maxUploadBytes, maxPixels: settings.maxPixels }, storage, imageKey, log);
        } catch (err) {
          if (err instanceof HttpError) {
            rejected.inc({ code: err.code });
            log.info(`upload refused: ${err.message}`);
          }
          throw err;
        }
        // The upload's request id becomes the task's trace id: the worker's calls about it carry it on.
        const task = await tasks.create({ op, imageKey, width: upload.header.width, height: upload.header.height, bytes: upload.png.length, traceId: currentRequestId(), jobId, idempotencyKey });
        if (idempotencyKey && (await tasks.imageKey(task.id)) !== imageKey) {
          // A concurrent upload of the same key made the task first: that one stands, our copy of the image goes.
          await storage.delete('working', imageKey).catch(() => undefined);
          res.status(200).location(`/tasks/${task.id}`).json(task);
          return;
        }
        submitted.inc();
        announce('created', task);
        log.info(`task ${task.id} created: ${op} on a ${task.width}x${task.height} PNG (${task.bytes} bytes)`);
        claims.wake();
        res.status(201).location(`/tasks/${task.id}`).json(task);
      });

      router.get('/tasks', async (req, res) => {
        const { state, limit } = parseWith(listQuery, req.query);
        const [list, counts] = await Promise.all([tasks.list(state, limit), tasks.counts()]);
        res.json({ tasks: list, counts });
      });

      router.get('/tasks/:id', async (req, res) => {
        const { id } = parseWith(taskIdParams, req.params, 'invalid_task_id');
        const task = await tasks.get(id);
        if (!task) throw new HttpError(404, 'task_not_found', `no task ${id}`);
        res.json(task);
      });

      router.get('/tasks/:id/result', async (req, res) => {
        const { id } = parseWith(taskIdParams, req.params, 'invalid_task_id');
        const task = await tasks.get(id);
        if (!task) throw new HttpError(404, 'task_not_found', `no task ${id}`);
        if (task.state === 'failed') throw new HttpError(409, 'task_failed', `task ${id} failed: ${task.error}`);
        if (task.state !== 'done') throw new HttpError(409, 'not_done', `task ${id} is ${task.state}, not done yet`, { 'Retry-After': '1' });
        const png = await storage.get('finished', (await tasks.imageKey(id))!);
        res.type('image/png').send(png);
      });

      router.post('/tasks/claim', async (req, res: Response) => {
        const { workerId, waitMs } = parseBody(claimBody, req.body);
        const hangUp = new AbortController();
        res.on('close', () => {
          if (!res.writableFinished) hangUp.abort();
        });
        const task = await claims.claim(workerId, Math.min(waitMs, settings.maxClaimWaitMs), hangUp.signal);
        if (!task) {
          res.status(204).end();
          return;
        }
        if (hangUp.signal.aborted || res.destroyed) {
          // The worker left while we leased it a task: give it straight back.
          await tasks.release(task.id, task.leaseToken);
          claims.wake();
          return;
        }
        res.json(task);
      });

      // A worker shutting down gives back what its slots may hold without knowing it: a claim the master granted
      // while the worker was hanging up, whose answer (and lease token) it never read.
      router.post('/tasks/release', async (req, res) => {
        const { workerIds } = parseBody(releaseHeldBody, req.body);
        const released = await tasks.releaseHeldBy(workerIds);
        if (released.length) {
          log.info(`task(s) ${released.join(', ')} released by the worker shutting down that held them unread: back to pending`);
          claims.wake();
        }
        res.json({ released });
      });

      router.post('/tasks/:id/renew', async (req, res) => {
        const { id } = parseWith(taskIdParams, req.params, 'invalid_task_id');
        const { leaseToken } = parseBody(leaseBody, req.body);
        const { outcome, leaseExpiresAt } = await tasks.renew(id, leaseToken);
        if (outcome !== 'ok') throw leaseRefused(outcome, id);
        res.json({ id, leaseExpiresAt, leaseMs: settings.leaseMs });
      });

      router.post('/tasks/:id/complete', async (req, res) => {
        const { id } = parseWith(taskIdParams, req.params, 'invalid_task_id');
        const { leaseToken, resultBytes } = parseBody(completeBody, req.body);
        const { outcome, task } = await tasks.complete(id, leaseToken, resultBytes ?? null);
        completions.inc({ outcome });
        switch (outcome) {
          case 'completed':
            log.info(`task ${id} done (attempt ${task!.attempts})`);
            announce('done', task);
            res.json(task);
            return;
          case 'already_completed':
            res.json(task);
            return;
          case 'unknown':
            throw new HttpError(404, 'task_not_found', `no task ${id}`);
          case 'already_done':
            log.warn(`late completion of task ${id} refused: another lease completed it first`);
            throw new HttpError(409, 'already_done', `task ${id} was already completed by another lease; your result was not used`);
          case 'failed':
            throw new HttpError(409, 'task_failed', `task ${id} has failed: ${task!.error}`);
          default:
            log.warn(`late completion of task ${id} refused: the lease had lapsed`);
            throw new HttpError(409, 'lease_expired', `task ${id} is no longer leased to you (the lease lapsed); your result was not used`);
        }
      });

      router.post('/tasks/:id/fail', async (req, res) => {
        const { id } = parseWith(taskIdParams, req.params, 'invalid_task_id');
        const { leaseToken, error, retryable } = parseBody(failBody, req.body);
        const { outcome, task } = await tasks.fail(id, leaseToken, error, retryable);
        if (outcome !== 'ok') throw leaseRefused(outcome, id);
        if (task!.state === 'failed') {
          log.warn(`task ${id} failed: ${task!.error}`);
          announce('failed', task);
        }
        else log.info(`task ${id} attempt ${task!.attempts} failed (${error}); back to pending`);
        claims.wake();
        res.json(task);
      });

      router.post('/tasks/:id/release', async (req, res) => {
        const { id } = parseWith(taskIdParams, req.params, 'invalid_task_id');
        const { leaseToken } = parseBody(leaseBody, req.body);
        const { outcome, task } = await tasks.release(id, leaseToken);
        if (outcome !== 'ok') throw leaseRefused(outcome, id);
        log.info(`task ${id} released by its worker: back to pending`);
        claims.wake();
        res.json(task);
      });

      router.all('/tasks', methodNotAllowed(['GET', 'POST']));
      router.all('/tasks/claim', methodNotAllowed(['POST']));
      router.all('/tasks/release', methodNotAllowed(['POST']));
      router.all('/tasks/:id', methodNotAllowed(['GET']));
      router.all('/tasks/:id/result', methodNotAllowed(['GET']));
      for (const action of ['renew', 'complete', 'fail', 'release']) router.all(`/tasks/:id/${action}`, methodNotAllowed(['POST']));
      return router;
    },
  }, { publish: true })), (svc) => [
    // A short timeout per delete: a shutdown waits for the run in flight.
    retentionJob(tasks, new StorageClient(svc.client('imagestorage'), 10_000), housekeeping),
    ...tasks.housekeepingJobs(housekeeping.sqlite),
  ]));
  const stop = svc.stop.bind(svc);
  svc.stop = async () => {
    await stop();
    await tasks.close();
    await jobs.close();
  };
  return svc;
}
