/** A task as both stores hold it (times in ms since epoch), and the views of it the API answers with. */
import type { Op } from '../ops.ts';
import type { ClaimedTask, TaskState, TaskView } from '../protocol.ts';

export interface TaskRow {
  id: number;
  state: TaskState;
  op: Op;
  image_key: string;
  width: number;
  height: number;
  bytes: number;
  attempts: number;
  worker_id: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  error: string | null;
  result_bytes: number | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  trace_id: string | null;
}

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toTaskView(row: TaskRow): TaskView {
  return {
    id: row.id,
    state: row.state,
    op: row.op,
    width: row.width,
    height: row.height,
    bytes: row.bytes,
    attempts: row.attempts,
    workerId: row.worker_id,
    leaseExpiresAt: row.state === 'running' ? iso(row.lease_expires_at) : null,
    error: row.error,
    resultBytes: row.result_bytes,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    traceId: row.trace_id,
  };
}

/** What a worker gets with its lease. */
export function toClaimedTask(row: TaskRow, leaseMs: number): ClaimedTask {
  return {
    id: row.id,
    op: row.op,
    imageKey: row.image_key,
    width: row.width,
    height: row.height,
    attempt: row.attempts,
    leaseToken: row.lease_token!,
    leaseExpiresAt: iso(row.lease_expires_at)!,
    leaseMs,
    traceId: row.trace_id,
  };
}
