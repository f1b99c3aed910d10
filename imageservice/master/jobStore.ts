/**
 * The master's jobs: what every job store (SQLite beside the tasks, PostgreSQL beside the tasks) offers, and the
 * view the API answers with. A job's tasks live in the task store with its id; the queries about them that only
 * jobs need (counts, a page of tasks, the task of a key, cancelling) are here, so the task store stays about tasks.
 */
import type { Op } from '../ops.ts';
import type { TaskState } from '../protocol.ts';
import type { JobState, JobTaskView, JobView } from '../jobProtocol.ts';
import type { TaskStoreSettings } from './taskStore.ts';

export interface JobRecord {
  id: number;
  name: string;
  op: Op;
  state: JobState;
  createdAt: number;
  updatedAt: number;
}

/** A row of the jobs table, by the same column names in SQLite and PostgreSQL. */
export interface JobRow {
  id: number;
  name: string;
  op: Op;
  state: JobState;
  created_at: number;
  updated_at: number;
}

export const toRecord = (row: JobRow): JobRecord => ({ id: row.id, name: row.name, op: row.op, state: row.state, createdAt: row.created_at, updatedAt: row.updated_at });

/** What a job's tasks add up to. */
export interface JobTaskSummary {
  counts: Record<TaskState, number>;
  bytes: number;
  resultBytes: number;
  /** The first claim of any of its tasks, and the last end (ms since epoch). */
  startedAt: number | null;
  lastFinishedAt: number | null;
}

export interface JobStore {
  create(name: string, op: Op): Promise<JobRecord>;
  get(id: number): Promise<JobRecord | undefined>;
  /** Newest first. */
  list(limit: number): Promise<JobRecord[]>;
  /** Pauses or resumes; a cancelled job stays cancelled (undefined when there is no such job). */
  setState(id: number, state: 'active' | 'paused'): Promise<JobRecord | undefined>;
  summary(id: number): Promise<JobTaskSummary>;
  /** Its tasks by id, after `afterId`. */
  tasks(id: number, afterId: number, limit: number): Promise<JobTaskView[]>;
  /** The task a job already has for this idempotency key. */
  taskByKey(jobId: number, key: string): Promise<number | undefined>;
  /** Marks the job cancelled and fails its pending and running tasks with `reason`, at once; the ids failed. */
  cancel(id: number, reason: string): Promise<{ job: JobRecord; failed: number[] } | undefined>;
  close(): Promise<void>;
}

export const emptyCounts = (): Record<TaskState, number> => ({ pending: 0, running: 0, done: 0, failed: 0 });

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A job and its tasks' totals as the API shows them, with the rate so far and the time left at that rate. */
export function toJobView(job: JobRecord, summary: JobTaskSummary, now = Date.now()): JobView {
  const { counts } = summary;
  const total = counts.pending + counts.running + counts.done + counts.failed;
  const ended = counts.done + counts.failed;
  const left = counts.pending + counts.running;
  const finishedAt = total > 0 && left === 0 ? summary.lastFinishedAt : null;
  const elapsedS = summary.startedAt === null ? 0 : ((finishedAt ?? now) - summary.startedAt) / 1000;
  const imagesPerSecond = elapsedS > 0 && ended > 0 ? ended / elapsedS : null;
  const etaSeconds = left === 0 ? 0 : imagesPerSecond && job.state === 'active' ? Math.ceil(left / imagesPerSecond) : null;
  return {
    id: job.id,
    name: job.name,
    op: job.op,
    state: job.state,
    createdAt: iso(job.createdAt)!,
    updatedAt: iso(job.updatedAt)!,
    startedAt: iso(summary.startedAt),
    finishedAt: iso(finishedAt),
    counts,
    total,
    bytes: summary.bytes,
    resultBytes: summary.resultBytes,
    imagesPerSecond: imagesPerSecond === null ? null : Math.round(imagesPerSecond * 100) / 100,
    etaSeconds,
  };
}

/** The job store beside the configured task store (opened after it: the task store's migration made the tables). */
export async function openJobStore(settings: TaskStoreSettings, onTrouble: (message: string) => void): Promise<JobStore> {
  if (settings.kind === 'sqlite') return (await import('./sqliteJobs.ts')).SqliteJobStore.open(settings.dataDir);
  return (await import('./pgJobs.ts')).PgJobStore.open(settings.pg!, onTrouble);
}
