/**
 * The tasks, behind one interface with two implementations side by side: embedded SQLite (the
 * zero-setup default, sqliteTasks.ts) and PostgreSQL, which any number of masters share
 * (pgTasks.ts). Both pass the same tests (taskStore.test.ts).
 *
 * States: pending -> running (with a lease) -> done | failed; running with a lapsed lease -> pending
 * (or failed, after MAX_ATTEMPTS). Ids are never handed out twice. Every change that needs a lease
 * takes the current lease token, so a stale worker's late call changes nothing.
 */
import { redactUrl, untilAvailable } from '../../shared/postgres.ts';
import type { HousekeepingJob } from '../../shared/housekeeping.ts';
import type { SqliteHousekeepingSettings } from '../../shared/sqliteBackup.ts';
import type { Op } from '../ops.ts';
import type { ClaimedTask, TaskState, TaskView } from '../protocol.ts';
import type { PgSettings } from './config.ts';

export type CompleteOutcome = 'completed' | 'already_completed' | 'already_done' | 'lease_expired' | 'failed' | 'unknown';
export type LeaseOutcome = 'ok' | 'lease_expired' | 'not_running' | 'unknown';

export interface TaskStoreOptions {
  leaseMs: number;
  maxAttempts: number;
  /** SQLite's clock (tests); PostgreSQL always takes the database's, so masters on different machines agree. */
  now?: () => number;
}

export interface NewTask {
  op: Op;
  imageKey: string;
  width: number;
  height: number;
  bytes: number;
  traceId?: string;
  /** The job it joins; with a key the job already has, create gives back that task instead (imageKey unused). */
  jobId?: number;
  idempotencyKey?: string;
}

export interface TaskStore {
  readonly kind: 'sqlite' | 'postgres';
  create(input: NewTask): Promise<TaskView>;
  get(id: number): Promise<TaskView | undefined>;
  imageKey(id: number): Promise<string | undefined>;
  list(state: TaskState | undefined, limit: number): Promise<TaskView[]>;
  /** Leases the oldest pending task (or one whose lease lapsed) to a worker, or undefined when there is none. */
  claim(workerId: string): Promise<ClaimedTask | undefined>;
  renew(id: number, token: string): Promise<{ outcome: LeaseOutcome; leaseExpiresAt?: string }>;
  /** The first completion wins; the same lease completing again is answered the same; any other lease is refused. */
  complete(id: number, token: string, resultBytes: number | null): Promise<{ outcome: CompleteOutcome; task?: TaskView }>;
  /** A failure: back to pending while attempts remain and it may help, else failed with the reason. */
  fail(id: number, token: string, error: string, retryable: boolean): Promise<{ outcome: LeaseOutcome; task?: TaskView }>;
  /** Gives a task back without counting the attempt (a worker shutting down). */
  release(id: number, token: string): Promise<{ outcome: LeaseOutcome; task?: TaskView }>;
  /**
   * Gives back, uncounted, every task still leased to these worker ids, and says which: a worker shutting down
   * whose claim was granted but whose answer it stopped reading holds a lease it has no token for.
   */
  releaseHeldBy(workerIds: string[]): Promise<number[]>;
  /** Returns tasks whose lease lapsed to pending, or fails those out of attempts. */
  expireLeases(): Promise<{ returned: number[]; failed: number[] }>;
  /** When the next lease lapses, on this process's clock (ms since epoch), if any task is running. */
  nextLeaseExpiry(): Promise<number | undefined>;
  counts(): Promise<Record<TaskState, number>>;
  /** Done and failed tasks that finished before `cutoff` (ms since epoch), by id from `afterId` on. */
  finishedBefore(cutoff: number, afterId: number, limit: number): Promise<{ id: number; imageKey: string }[]>;
  /** Deletes a done or failed task (never one that is pending or running); false when there was none. */
  removeFinished(id: number): Promise<boolean>;
  /** Whether any task (in any state) owns this image key. */
  hasImageKey(imageKey: string): Promise<boolean>;
  /**
   * Tells `onPending` when another process may have made a task pending, and calls `onTick` every short while
   * (the backstop for a lost notification and for leases other masters granted). A store only this process
   * writes never calls them: the master wakes itself.
   */
  watch(onPending: () => void, onTick: () => void): void;
  /** The scheduled jobs the store itself needs (SQLite's checkpoint and backups). */
  housekeepingJobs(settings: SqliteHousekeepingSettings): HousekeepingJob[];
  close(): Promise<void>;
}

export type TaskStoreKind = TaskStore['kind'];
export const TASK_STORE_KINDS: TaskStoreKind[] = ['sqlite', 'postgres'];

export interface TaskStoreSettings {
  kind: TaskStoreKind;
  /** SQLite's folder. */
  dataDir: string;
  /** PostgreSQL's connection and pool (pgPool.ts, shared/postgres.ts). */
  pg?: PgSettings;
}

/**
 * Opens the configured store. PostgreSQL that is away at start is waited for (with backoff, saying so), since
 * the master is useless without it and a launcher would only start it again; any other error (a wrong
 * password, a bad URL) ends the start at once.
 */
export async function openTaskStore(settings: TaskStoreSettings, options: TaskStoreOptions, warn: (message: string) => void): Promise<TaskStore> {
  if (settings.kind === 'sqlite') {
    const { SqliteTaskStore } = await import('./sqliteTasks.ts');
    return new SqliteTaskStore(settings.dataDir, options);
  }
  if (!settings.pg?.url) throw new Error('TASK_STORE=postgres needs DATABASE_URL=postgres://user:password@host:port/database');
  // Loaded only when asked for: the default store never pays for the PostgreSQL client.
  const { PgTaskStore } = await import('./pgTasks.ts');
  const pgSettings = settings.pg;
  try {
    return await untilAvailable(() => PgTaskStore.open(pgSettings, options, warn), {
      backoff: { initialMs: 250, maxMs: 5_000 },
      waiting: (err, attempt) => {
        if (attempt === 1 || attempt % 10 === 0) warn(`the task database at ${redactUrl(pgSettings.url)} is unavailable (${err.message}); waiting for it`);
      },
    });
  } catch (err) {
    // Without a deadline, only what is not the database being away ends the wait.
    throw new Error(`the task database at ${redactUrl(pgSettings.url)} refused: ${(err as Error).message}`);
  }
}
