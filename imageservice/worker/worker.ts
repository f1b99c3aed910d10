/**
 * The worker (registers as `imageworker`, checked by heartbeat like every service with an HTTP server: it
 * serves /heartbeat and /metrics, so a killed worker is down within a second, not a lease later): N slots,
 * each claiming a task (long-poll), downloading its image, transforming it in the thread pool,
 * uploading the result to `finished` and completing the task. Leases are renewed while an image
 * takes long; calls back off with jitter while the master or storage is away. On SIGTERM it stops
 * claiming, finishes what it holds (or releases it after a grace period), deregisters and exits.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { startService, type Service } from '../../shared/service.ts';
import { withLogShipping } from '../../logservice/client.ts';
import { EqualJitterBackoff } from '../../shared/backoff.ts';
import { ApiError, classifyUpstream } from '../../shared/apiError.ts';
import { prom } from '../../shared/metrics.ts';
import type { Logger } from '../../shared/logger.ts';
import { MasterClient, MasterError } from '../master/client.ts';
import { isMissing, StorageClient } from '../storage/client.ts';
import type { ClaimedTask } from '../protocol.ts';
import { TransformPool } from './pool.ts';
import { DEFAULT_CODEC } from '../codec.ts';
import { WORKER_SERVICE, workerDefaults, type WorkerOptions } from './config.ts';
import { resolveCodec } from '../codecs.ts';
import { withRequestId } from '../../shared/requestContext.ts';
import { lowerPriority } from './priority.ts';

export interface RunningWorker {
  svc: Service;
  logger: Logger;
  concurrency: number;
  stop(): Promise<void>;
}

/** Errors worth retrying: the other side is away or overloaded, not refusing. */
function isTransient(err: unknown): boolean {
  const failure = classifyUpstream(err);
  return failure !== undefined && (failure.kind !== 'answered' || failure.status >= 500);
}

function describe(err: unknown): string {
  // The master's typed error already says who answered what.
  if (err instanceof ApiError) return err.message;
  const failure = classifyUpstream(err);
  if (!failure) return (err as Error).message;
  if (failure.kind === 'no_provider') return failure.message;
  return failure.kind === 'answered' ? `${failure.target ?? ''} answered ${failure.status}` : failure.reason;
}

class LeaseLost extends Error {}

/** How long a shutting-down worker waits for the master to give back what its cut claims may hold. */
const RELEASE_UNREAD_TIMEOUT_MS = 2000;

export async function startWorker(options: WorkerOptions = {}): Promise<RunningWorker> {
  const concurrency = Math.max(1, options.concurrency ?? os.availableParallelism());
  const prefetch = Math.max(0, options.prefetch ?? workerDefaults.prefetch);
  const claimWaitMs = options.claimWaitMs ?? workerDefaults.claimWaitMs;
  const graceMs = options.shutdownGraceMs ?? workerDefaults.shutdownGraceMs;
  const workerId = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const nice = options.nice ?? workerDefaults.nice;
  // Before the pool and the codec make their threads, so that they start at this priority.
  const priorityWarning = lowerPriority(nice);
  const { codec, warning: codecWarning } = await resolveCodec(options.codec ?? DEFAULT_CODEC);
  const pool = new TransformPool({ threads: concurrency, codec, encoder: options.encoder, maxPixels: options.maxPixels });
  const stopping = new AbortController();

  const svc = await startService(withLogShipping({
    name: WORKER_SERVICE,
    requiredServices: ['imagemaster', 'imagestorage', 'log'],
    config: options.config,
    metadata: { concurrency: String(concurrency), prefetch: String(prefetch), workerId, codec, nice: String(nice) },
  }));
  const log = svc.logger;
  if (codecWarning) log.warn(codecWarning);
  if (priorityWarning) log.warn(priorityWarning);
  const master = new MasterClient(svc.client('imagemaster'));
  const storage = new StorageClient(svc.client('imagestorage'));

  const finished = new prom.Counter({ name: 'imageworker_tasks_total', help: 'Tasks handled, by result', labelNames: ['result'], registers: [svc.metrics] });
  const transformSeconds = new prom.Histogram({
    name: 'imageworker_transform_seconds',
    help: 'Decode + op + encode time per image (in the thread pool, including any queueing)',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [svc.metrics],
  });
  const busy = new prom.Gauge({ name: 'imageworker_slots_busy', help: 'Slots working on a task', registers: [svc.metrics] });

  const held = new Map<number, { task: ClaimedTask; lost: boolean }>();

  /** Retries a call while the other side is away, with jittered backoff, as long as the lease holds. */
  async function persist<T>(what: string, entry: { lost: boolean }, fn: () => Promise<T>): Promise<T> {
    const backoff = new EqualJitterBackoff({ initialMs: 100, maxMs: 2000 });
    for (let attempt = 1; ; attempt++) {
      if (entry.lost) throw new LeaseLost();
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err)) throw err;
        if (attempt === 1 || attempt % 10 === 0) log.warn(`${what}: ${describe(err)}; retrying with backoff`);
        await backoff.wait();
      }
    }
  }

  async function work(task: ClaimedTask): Promise<void> {
    const entry = { task, lost: false };
    held.set(task.id, entry);
    busy.inc();
    const renewal = setInterval(() => {
      master.renew(task.id, task.leaseToken).then(
        () => undefined,
        (err) => {
          if (err instanceof MasterError && err.status === 409) {
            entry.lost = true;
            log.warn(`lost the lease on task ${task.id}: ${err.message}`);
          } else log.debug(`could not renew task ${task.id}: ${describe(err)}`);
        },
      );
    }, Math.max(200, task.leaseMs / 3));
    try {
      const claimedAt = performance.now();
      const ms = (from: number, to = performance.now()) => Math.round(to - from);
      log.info(`task ${task.id} claimed: ${task.op}, attempt ${task.attempt}`);
      let input: Buffer;
      try {
        input = await persist(`download of task ${task.id}`, entry, () => storage.get('working', task.imageKey));
      } catch (err) {
        if (isMissing(err)) {
          await master.fail(task.id, task.leaseToken, 'the uploaded image is missing from storage', false);
          finished.inc({ result: 'failed' });
          return;
        }
        throw err;
      }
      const started = performance.now();
      log.info(`task ${task.id}: downloaded ${input.byteLength} bytes in ${ms(claimedAt, started)} ms`);
      const result = await pool.run(input, task.op);
      transformSeconds.observe((performance.now() - started) / 1000);
      if (!result.ok) {
        await persist(`failing task ${task.id}`, entry, () => master.fail(task.id, task.leaseToken, result.error, result.retryable));
        finished.inc({ result: 'failed' });
        log.info(`task ${task.id} failed: ${result.error}`);
        return;
      }
      const transformed = performance.now();
      log.info(`task ${task.id}: transformed ${result.width}x${result.height} (${task.op}) in ${ms(started, transformed)} ms`);
      await persist(`upload of task ${task.id}`, entry, () => storage.put('finished', task.imageKey, result.png));
      const uploaded = performance.now();
      log.info(`task ${task.id}: uploaded ${result.png.byteLength} bytes to finished in ${ms(transformed, uploaded)} ms`);
      await persist(`completing task ${task.id}`, entry, () => master.complete(task.id, task.leaseToken, result.png.byteLength));
      finished.inc({ result: 'done' });
      log.info(
        `task ${task.id} done: ${task.op} on ${result.width}x${result.height} in ${ms(claimedAt, performance.now())} ms ` +
          `(download ${ms(claimedAt, started)}, transform ${ms(started, transformed)} [decode ${Math.round(result.decodeMs)}, op ${Math.round(result.opMs)}, encode ${Math.round(result.encodeMs)}], ` +
          `upload ${ms(transformed, uploaded)}, complete ${ms(uploaded, performance.now())})`,
      );
    } catch (err) {
      if (err instanceof LeaseLost || (err instanceof MasterError && err.status === 409)) {
        finished.inc({ result: 'lost' });
        log.warn(`task ${task.id} dropped: ${err instanceof MasterError ? err.message : 'the lease was lost'}`);
        return;
      }
      finished.inc({ result: 'error' });
      log.warn(`task ${task.id} attempt failed: ${describe(err)}`);
      await master.fail(task.id, task.leaseToken, `worker error: ${describe(err)}`, true).catch(() => undefined);
    } finally {
      clearInterval(renewal);
      held.delete(task.id);
      busy.dec();
    }
  }

  const inFlight = new Set<Promise<void>>();
  /** Each slot's claim while it waits for the answer, by the slot's worker id. */
  const claiming = new Map<string, Promise<ClaimedTask | undefined>>();

  // Until a master has registered there is nothing to claim: the slots wait for the first one quietly (one
  // info line), so a worker started beside it (as the launcher does) warns of nothing. Once one was seen, a
  // missing master is a failure and warns as any other; a missing storage node is found on the first task.
  const masterKnown = new Promise<void>((resolve) => {
    if (svc.providers.has('imagemaster')) return resolve();
    log.info('waiting for an imagemaster to register before claiming tasks');
    const off = svc.onChange('imagemaster', (urls) => urls.length > 0 && done());
    stopping.signal.addEventListener('abort', () => done(), { once: true });
    function done() {
      off();
      resolve();
    }
  });

  async function slot(index: number): Promise<void> {
    const backoff = new EqualJitterBackoff({ initialMs: 100, maxMs: 3000 });
    let failures = 0;
    await masterKnown;
    const slotId = `${workerId}/${index}`;
    while (!stopping.signal.aborted) {
      let task: ClaimedTask | undefined;
      const claim = master.claim(slotId, claimWaitMs, stopping.signal);
      claiming.set(slotId, claim);
      try {
        task = await claim;
        backoff.reset();
        failures = 0;
      } catch (err) {
        if (stopping.signal.aborted) return;
        failures++;
        if (failures === 1 || failures % 20 === 0) log.warn(`slot ${index}: cannot claim (${describe(err)}); backing off`);
        await backoff.wait(stopping.signal);
        continue;
      } finally {
        claiming.delete(slotId);
      }
      if (!task) continue;
      // The task's calls and lines carry its upload's request id, so one trace follows the image.
      const claimed = task;
      const job = claimed.traceId ? withRequestId(claimed.traceId, () => work(claimed)) : work(claimed);
      inFlight.add(job);
      await job;
      inFlight.delete(job);
    }
  }

  await svc.registered;
  log.info(`worker ${workerId}: ${concurrency + prefetch} slot(s) (${prefetch} ahead), pool of ${pool.threads} thread(s), ${codec} codec, nice ${nice}`);
  const slots = Array.from({ length: concurrency + prefetch }, (_, i) => slot(i));

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      const cut = [...claiming];
      stopping.abort();
      // A claim cut short may have been granted already, its answer (and lease token) unread: whatever is still
      // leased to those slots goes back now rather than when its lease lapses. A claim that was answered in time
      // is held like any other task.
      const settled = await Promise.allSettled(cut.map(([, claim]) => claim));
      const unread = cut.filter((_, i) => settled[i].status === 'rejected').map(([slotId]) => slotId);
      if (unread.length) {
        // Bounded: a master stopping beside us (the launcher stops both at once) must not hold up the exit.
        await master.releaseHeldBy(unread, RELEASE_UNREAD_TIMEOUT_MS).then(
          (ids) => ids.length > 0 && log.info(`released task(s) ${ids.join(', ')}, granted to a claim the shutdown cut short`),
          // Most often nothing was granted; if something was, its lease lapses as for a crash.
          (err) => log.info(`could not ask the master to give back what claims cut short may hold: ${describe(err)}`),
        );
      }
      if (held.size) log.info(`finishing ${held.size} task(s) before exiting (up to ${graceMs} ms)`);
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.all([...inFlight]), grace]);
      for (const { task } of held.values()) {
        // Still running after the grace period: give it back so another worker takes it at once.
        await master.release(task.id, task.leaseToken).then(
          () => log.info(`released task ${task.id}`),
          (err) => log.warn(`could not release task ${task.id}: ${describe(err)} (its lease will lapse)`),
        );
        held.get(task.id)!.lost = true;
      }
      await Promise.race([Promise.all(slots), grace]);
      await pool.destroy();
      await svc.stop();
    })());

  return { svc, logger: log, concurrency, stop };
}
