/**
 * The wire types of jobs (docs/protocol.md, "Jobs"): a named group of tasks with one op, pausable at the
 * master. The master's job routes and the CLI's job client both import these.
 */
import { z } from 'zod';
import { DEFAULT_OP, opSchema, type Op } from './ops.ts';
import type { TaskState } from './protocol.ts';

/** active: its pending tasks are claimed; paused: they wait; cancelled: what was not done has failed. */
export const JOB_STATES = ['active', 'paused', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobView {
  id: number;
  name: string;
  op: Op;
  state: JobState;
  createdAt: string;
  updatedAt: string;
  /** When its first task was claimed, and when its last one ended (null while any is pending or running). */
  startedAt: string | null;
  finishedAt: string | null;
  counts: Record<TaskState, number>;
  total: number;
  /** Bytes uploaded (the tasks' images) and bytes of results. */
  bytes: number;
  resultBytes: number;
  /** Tasks ended per second since the job started, and the seconds left at that rate (null when unknown). */
  imagesPerSecond: number | null;
  etaSeconds: number | null;
}

/** One task of a job, as GET /jobs/:id/tasks lists it. */
export interface JobTaskView {
  id: number;
  state: TaskState;
  idempotencyKey: string | null;
  bytes: number;
  resultBytes: number | null;
  error: string | null;
  finishedAt: string | null;
}

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
export const idempotencyKeySchema = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 letters, digits, ".", "_", ":" or "-"');

export const jobIdParams = z.object({ id: z.coerce.number().int().positive('must be a positive job id').max(Number.MAX_SAFE_INTEGER) });
export const createJobBody = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200),
  op: opSchema.default(DEFAULT_OP),
});
export const jobListQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
/** Pages by task id: `after` is the last id of the previous page. */
export const jobTasksQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});
/** POST /tasks?op=&job=: the job a task joins (with an Idempotency-Key header, at most once per key). */
export const jobUploadQuery = z.object({
  job: z.coerce.number().int().positive('must be a positive job id').max(Number.MAX_SAFE_INTEGER).optional(),
});

export type CreateJobBody = z.input<typeof createJobBody>;
