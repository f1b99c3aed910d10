/**
 * The tasks in PostgreSQL, shared by any number of masters. A claim is one statement: it picks the
 * oldest pending task, or a running one whose lease lapsed (attempts left), with FOR UPDATE SKIP LOCKED,
 * so masters racing for work never wait on each other nor lease one task twice. Leases run on the
 * database's clock. Ids come from an identity sequence: never reused. A new pending task NOTIFYs every
 * master (a trigger, pgSchema.ts), and each master LISTENs on one connection of its own (pgListener.ts).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ClaimedTask, TaskState, TaskView } from '../protocol.ts';
import type { HousekeepingJob } from '../../shared/housekeeping.ts';
import { iso, toClaimedTask, toTaskView, type TaskRow } from './taskRow.ts';
import { asHttp, clientConfig, createPool } from './pgPool.ts';
import type { PgSettings } from './config.ts';
import { PgListener } from './pgListener.ts';
import { migrate, TASK_MIGRATIONS } from './pgSchema.ts';
import type { CompleteOutcome, LeaseOutcome, NewTask, TaskStore, TaskStoreOptions } from './taskStore.ts';

const NOW = 'tasks_now_ms()';
/** The reason a lapsed lease leaves, as the SQLite store words it; `t` qualifies the columns where the statement needs it. */
const lapsed = (t = '') => `'lease lapsed on attempt ' || ${t}attempts || COALESCE(' (worker ' || ${t}worker_id || ')', '')`;
const who = `COALESCE(' (worker ' || worker_id || ')', '')`;
/** A task given back by its worker: pending again, the attempt not counted. */
const GIVE_BACK = `UPDATE tasks SET state = 'pending', attempts = GREATEST(attempts - 1, 0), lease_token = NULL, lease_expires_at = NULL,
                    worker_id = NULL, updated_at = ${NOW}`;

const SQL = {
  insert: `INSERT INTO tasks (state, op, image_key, width, height, bytes, trace_id, job_id, idempotency_key, created_at, updated_at)
           VALUES ('pending', $1, $2, $3, $4, $5, $6, $7, $8, ${NOW}, ${NOW})
           ON CONFLICT (job_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *`,
  byKey: 'SELECT * FROM tasks WHERE job_id = $1 AND idempotency_key = $2',
  get: 'SELECT * FROM tasks WHERE id = $1',
  list: 'SELECT * FROM tasks ORDER BY id DESC LIMIT $1',
  listByState: 'SELECT * FROM tasks WHERE state = $1 ORDER BY id DESC LIMIT $2',
  // $3: lease ms, $4: max attempts. A lapsed lease re-claimed here says so, as the reaper would have.
  claim: `WITH next AS (
            SELECT id FROM tasks
            WHERE (state = 'pending' OR (state = 'running' AND lease_expires_at <= ${NOW} AND attempts < $4))
              AND (job_id IS NULL OR job_id NOT IN (SELECT id FROM jobs WHERE state = 'paused'))
            ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
          UPDATE tasks t SET state = 'running', attempts = t.attempts + 1, worker_id = $1, lease_token = $2,
            lease_expires_at = ${NOW} + $3, started_at = COALESCE(t.started_at, ${NOW}), updated_at = ${NOW},
            error = CASE WHEN t.state = 'running' THEN ${lapsed('t.')} ELSE t.error END
          FROM next WHERE t.id = next.id RETURNING t.*`,
  renew: `UPDATE tasks SET lease_expires_at = ${NOW} + $3, updated_at = ${NOW}
          WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING *`,
  complete: `UPDATE tasks SET state = 'done', result_bytes = $3, lease_expires_at = NULL, error = NULL, finished_at = ${NOW}, updated_at = ${NOW}
             WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING *`,
  fail: `UPDATE tasks SET state = 'failed', error = $3, lease_expires_at = NULL, finished_at = ${NOW}, updated_at = ${NOW}
         WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING *`,
  retry: `UPDATE tasks SET state = 'pending', error = $3, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = ${NOW}
          WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING *`,
  release: `${GIVE_BACK} WHERE id = $1 AND state = 'running' AND lease_token = $2 RETURNING *`,
  releaseHeldBy: `${GIVE_BACK} WHERE state = 'running' AND worker_id = ANY($1::text[]) RETURNING id`,
  lapseToFailed: `UPDATE tasks SET state = 'failed', lease_expires_at = NULL, finished_at = ${NOW}, updated_at = ${NOW},
                    error = 'gave up after ' || attempts || ' attempts: the lease lapsed each time' || ${who}
                  WHERE state = 'running' AND lease_expires_at <= ${NOW} AND attempts >= $1 RETURNING id`,
  lapseToPending: `UPDATE tasks SET state = 'pending', lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = ${NOW},
                     error = ${lapsed()}
                   WHERE state = 'running' AND lease_expires_at <= ${NOW} AND attempts < $1 RETURNING id`,
  // In ms from now, so the caller converts it to its own clock.
  nextExpiry: `SELECT MIN(lease_expires_at) - ${NOW} AS in_ms FROM tasks WHERE state = 'running'`,
  counts: 'SELECT state, COUNT(*) AS n FROM tasks GROUP BY state',
  finishedBefore: `SELECT id, image_key AS "imageKey" FROM tasks WHERE state IN ('done', 'failed') AND finished_at < $1 AND id > $2 ORDER BY id LIMIT $3`,
  hasImageKey: 'SELECT 1 FROM tasks WHERE image_key = $1 LIMIT 1',
  removeFinished: `DELETE FROM tasks WHERE id = $1 AND state IN ('done', 'failed')`,
};

export class PgTaskStore implements TaskStore {
  readonly kind = 'postgres';
  private listener?: PgListener;
  private ticker?: NodeJS.Timeout;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly settings: PgSettings,
    private readonly options: TaskStoreOptions,
    private readonly onTrouble: (message: string) => void,
  ) {}

  /** Connects and migrates the schema (safe when several masters start at once). */
  static async open(settings: PgSettings, options: TaskStoreOptions, onTrouble: (message: string) => void): Promise<PgTaskStore> {
    const pool = createPool(settings, (err) => onTrouble(`an idle database connection failed (${err.message})`));
    try {
      await migrate(pool, 'imagemaster', TASK_MIGRATIONS);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PgTaskStore(pool, settings, options, onTrouble);
  }

  /** Every query goes through here: a database that is away becomes a 503 with Retry-After. */
  private async query<R extends pg.QueryResultRow = TaskRow>(text: string, values: unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (err) {
      throw asHttp(err);
    }
  }

  private async row(id: number): Promise<TaskRow | undefined> {
    return (await this.query(SQL.get, [id]))[0];
  }

  async create(input: NewTask): Promise<TaskView> {
    const [row] = await this.query(SQL.insert, [input.op, input.imageKey, input.width, input.height, input.bytes, input.traceId ?? null, input.jobId ?? null, input.idempotencyKey ?? null]);
    // The job had this key's task already: that one, not a new one.
    return toTaskView(row ?? (await this.query(SQL.byKey, [input.jobId, input.idempotencyKey]))[0]);
  }

  async get(id: number): Promise<TaskView | undefined> {
    const row = await this.row(id);
    return row && toTaskView(row);
  }

  async imageKey(id: number): Promise<string | undefined> {
    return (await this.row(id))?.image_key;
  }

  async list(state: TaskState | undefined, limit: number): Promise<TaskView[]> {
    const rows = state ? await this.query(SQL.listByState, [state, limit]) : await this.query(SQL.list, [limit]);
    return rows.map(toTaskView);
  }

  async claim(workerId: string): Promise<ClaimedTask | undefined> {
    const token = randomBytes(12).toString('base64url');
    const [row] = await this.query(SQL.claim, [workerId, token, this.options.leaseMs, this.options.maxAttempts]);
    return row && toClaimedTask(row, this.options.leaseMs);
  }

  private async refusal(id: number): Promise<LeaseOutcome> {
    const row = await this.row(id);
    if (!row) return 'unknown';
    return row.state === 'running' || row.state === 'pending' ? 'lease_expired' : 'not_running';
  }

  async renew(id: number, token: string): Promise<{ outcome: LeaseOutcome; leaseExpiresAt?: string }> {
    const [row] = await this.query(SQL.renew, [id, token, this.options.leaseMs]);
    if (row) return { outcome: 'ok', leaseExpiresAt: iso(row.lease_expires_at)! };
    return { outcome: await this.refusal(id) };
  }

  async complete(id: number, token: string, resultBytes: number | null): Promise<{ outcome: CompleteOutcome; task?: TaskView }> {
    const [row] = await this.query(SQL.complete, [id, token, resultBytes]);
    if (row) return { outcome: 'completed', task: toTaskView(row) };
    const current = await this.row(id);
    if (!current) return { outcome: 'unknown' };
    if (current.state === 'done') return { outcome: current.lease_token === token ? 'already_completed' : 'already_done', task: toTaskView(current) };
    if (current.state === 'failed') return { outcome: 'failed', task: toTaskView(current) };
    return { outcome: 'lease_expired', task: toTaskView(current) };
  }

  async fail(id: number, token: string, error: string, retryable: boolean): Promise<{ outcome: LeaseOutcome; task?: TaskView }> {
    const current = await this.row(id);
    if (!current) return { outcome: 'unknown' };
    // The token in each statement makes the decision safe: a claim in between changes it, and the update finds nothing.
    let rows: TaskRow[];
    if (!retryable) rows = await this.query(SQL.fail, [id, token, error]);
    else if (current.attempts >= this.options.maxAttempts) rows = await this.query(SQL.fail, [id, token, `gave up after ${current.attempts} attempts: ${error}`]);
    else rows = await this.query(SQL.retry, [id, token, error]);
    return rows[0] ? { outcome: 'ok', task: toTaskView(rows[0]) } : { outcome: await this.refusal(id) };
  }

  async release(id: number, token: string): Promise<{ outcome: LeaseOutcome; task?: TaskView }> {
    const [row] = await this.query(SQL.release, [id, token]);
    return row ? { outcome: 'ok', task: toTaskView(row) } : { outcome: await this.refusal(id) };
  }

  async releaseHeldBy(workerIds: string[]): Promise<number[]> {
    return (await this.query<{ id: number }>(SQL.releaseHeldBy, [workerIds])).map((r) => r.id).sort((x, y) => x - y);
  }

  async expireLeases(): Promise<{ returned: number[]; failed: number[] }> {
    const failed = (await this.query<{ id: number }>(SQL.lapseToFailed, [this.options.maxAttempts])).map((r) => r.id);
    const returned = (await this.query<{ id: number }>(SQL.lapseToPending, [this.options.maxAttempts])).map((r) => r.id);
    return { returned, failed };
  }

  async nextLeaseExpiry(): Promise<number | undefined> {
    const [{ in_ms }] = await this.query<{ in_ms: number | null }>(SQL.nextExpiry);
    return in_ms === null ? undefined : Date.now() + in_ms;
  }

  async counts(): Promise<Record<TaskState, number>> {
    const counts: Record<TaskState, number> = { pending: 0, running: 0, done: 0, failed: 0 };
    for (const { state, n } of await this.query<{ state: TaskState; n: number }>(SQL.counts)) counts[state] = n;
    return counts;
  }

  async finishedBefore(cutoff: number, afterId: number, limit: number): Promise<{ id: number; imageKey: string }[]> {
    return this.query<{ id: number; imageKey: string }>(SQL.finishedBefore, [cutoff, afterId, limit]);
  }

  async removeFinished(id: number): Promise<boolean> {
    try {
      return ((await this.pool.query(SQL.removeFinished, [id])).rowCount ?? 0) > 0;
    } catch (err) {
      throw asHttp(err);
    }
  }

  async hasImageKey(imageKey: string): Promise<boolean> {
    return (await this.query(SQL.hasImageKey, [imageKey])).length > 0;
  }

  watch(onPending: () => void, onTick: () => void): void {
    this.listener ??= new PgListener(clientConfig(this.settings), 'tasks_pending', onPending, this.onTrouble);
    this.listener.start();
    this.ticker = setInterval(onTick, this.settings.pollMs);
    this.ticker.unref();
  }

  /** Whether the LISTEN connection is up (for /health and tests). */
  get listening(): boolean {
    return this.listener?.listening ?? false;
  }

  /** Backups and checkpoints are the database's own business. */
  housekeepingJobs(): HousekeepingJob[] {
    return [];
  }

  async close(): Promise<void> {
    clearInterval(this.ticker);
    await this.listener?.stop();
    await this.pool.end();
  }
}
