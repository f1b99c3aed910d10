/**
 * The image pipeline's wire types: what storage, master, workers and the frontend exchange.
 * Servers and clients import these, so both ends of a conversation agree.
 */
import { z } from 'zod';
import { opSchema, type Op } from './ops.ts';

export const IMAGE_STATES = ['working', 'finished'] as const;
export type ImageState = (typeof IMAGE_STATES)[number];
export const imageStateSchema = z.enum(IMAGE_STATES, { message: 'must be "working" or "finished"' });
export const imageIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');
export const imagePathParams = z.object({ state: imageStateSchema, id: imageIdSchema });

export const TASK_STATES = ['pending', 'running', 'done', 'failed'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export interface TaskView {
  id: number;
  state: TaskState;
  op: Op;
  width: number;
  height: number;
  bytes: number;
  attempts: number;
  workerId: string | null;
  leaseExpiresAt: string | null;
  error: string | null;
  resultBytes: number | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The request id of the upload that created it: every service's lines about this image carry it. */
  traceId: string | null;
}

/** What a worker gets from a claim: the task, where its image is, and its lease. */
export interface ClaimedTask {
  id: number;
  op: Op;
  imageKey: string;
  width: number;
  height: number;
  attempt: number;
  leaseToken: string;
  leaseExpiresAt: string;
  leaseMs: number;
  /** The upload's request id, for the worker's calls and lines about this task. */
  traceId: string | null;
}

export const taskIdParams = z.object({ id: z.coerce.number().int().positive('must be a positive task id').max(Number.MAX_SAFE_INTEGER) });
export const workerIdSchema = z.string().trim().min(1).max(128);
export const leaseTokenSchema = z.string().min(1).max(128);

export const claimBody = z.object({ workerId: workerIdSchema, waitMs: z.number().int().min(0).max(120_000).default(0) });
export const leaseBody = z.object({ leaseToken: leaseTokenSchema });
/** A shutting-down worker's slots (each claims as a worker id of its own). */
export const releaseHeldBody = z.object({ workerIds: z.array(workerIdSchema).min(1).max(1024) });
export const completeBody = z.object({ leaseToken: leaseTokenSchema, resultBytes: z.number().int().nonnegative().optional() });
export const failBody = z.object({ leaseToken: leaseTokenSchema, error: z.string().min(1).max(2000), retryable: z.boolean().default(true) });

export const submitQuery = z.object({ op: opSchema.optional() });
export const listQuery = z.object({
  state: z.enum(TASK_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export type ClaimBody = z.input<typeof claimBody>;
export type FailBody = z.input<typeof failBody>;
