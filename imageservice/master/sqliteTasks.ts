/**
 * The tasks in embedded SQLite (better-sqlite3, WAL) under DATA_DIR: the default store, for one master.
 * Ids come from AUTOINCREMENT, so an id is never handed out twice, even after the newest row is gone or
 * the master restarts. Every state change is one statement or one transaction; the calls are synchronous
 * underneath (the async interface costs a microtask, not a thread hop).
 */
import path from 'node:path';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { sqliteJobs, type SqliteHousekeepingSettings } from '../../shared/sqliteBackup.ts';
import type { HousekeepingJob } from '../../shared/housekeeping.ts';
import type { ClaimedTask, TaskState, TaskView } from '../protocol.ts';
import { toClaimedTask, toTaskView, iso, type TaskRow } from './taskRow.ts';
import type { CompleteOutcome, LeaseOutcome, NewTask, TaskStore, TaskStoreOptions } from './taskStore.ts';
import { migrateJobs } from './sqliteJobs.ts';

/** A task given back by its worker: pending again, the attempt not counted. */
const GIVE_BACK = `UPDATE tasks SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_token = NULL, lease_expires_at = NULL,
  worker_id = NULL, updated_at = @now`;

export class SqliteTaskStore implements TaskStore {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly statements;

  constructor(
    private readonly dataDir: string,
    private readonly options: TaskStoreOptions,
  ) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, 'tasks.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a crash of the process (not necessarily of the machine) and saves an fsync per commit.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
        op TEXT NOT NULL,
        image_key TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        lease_token TEXT,
        lease_expires_at INTEGER,
        error TEXT,
        result_bytes INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        trace_id TEXT
      );
      CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, id);
      CREATE INDEX IF NOT EXISTS tasks_by_lease ON tasks (lease_expires_at) WHERE state = 'running';
      CREATE INDEX IF NOT EXISTS tasks_by_image_key ON tasks (image_key);
    `);
    // Tables made before tasks carried their upload's request id get the column (empty for their old rows).
    const columns = this.db.pragma('table_info(tasks)') as { name: string }[];
    if (!columns.some((c) => c.name === 'trace_id')) this.db.exec('ALTER TABLE tasks ADD COLUMN trace_id TEXT');
    // Jobs (#17): the jobs table, and each task's job and idempotency key (versioned in job_migrations).
    migrateJobs(this.db);
    this.now = options.now ?? Date.now;
    const db = this.db;
    this.statements = {
      insert: db.prepare(
        `INSERT INTO tasks (state, op, image_key, width, height, bytes, trace_id, job_id, idempotency_key, created_at, updated_at)
         VALUES ('pending', @op, @imageKey, @width, @height, @bytes, @traceId, @jobId, @idempotencyKey, @now, @now)
         ON CONFLICT (job_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *`,
      ),
      byKey: db.prepare('SELECT * FROM tasks WHERE job_id = ? AND idempotency_key = ?'),
      get: db.prepare('SELECT * FROM tasks WHERE id = ?'),
      list: db.prepare('SELECT * FROM tasks ORDER BY id DESC LIMIT ?'),
      listByState: db.prepare('SELECT * FROM tasks WHERE state = ? ORDER BY id DESC LIMIT ?'),
      // The tasks of a paused job wait.
      nextPending: db.prepare(
        `SELECT id FROM tasks WHERE state = 'pending' AND (job_id IS NULL OR job_id NOT IN (SELECT id FROM jobs WHERE state = 'paused')) ORDER BY id LIMIT 1`,
      ),
      claim: db.prepare(
        `UPDATE tasks SET state = 'running', attempts = attempts + 1, worker_id = @workerId, lease_token = @token,
           lease_expires_at = @expires, started_at = COALESCE(started_at, @now), updated_at = @now
         WHERE id = @id AND state = 'pending' RETURNING *`,
      ),
      renew: db.prepare(
        `UPDATE tasks SET lease_expires_at = @expires, updated_at = @now
         WHERE id = @id AND state = 'running' AND lease_token = @token RETURNING *`,
      ),
      complete: db.prepare(
        `UPDATE tasks SET state = 'done', result_bytes = @resultBytes, lease_expires_at = NULL, error = NULL,
           finished_at = @now, updated_at = @now
         WHERE id = @id AND state = 'running' AND lease_token = @token RETURNING *`,
      ),
      fail: db.prepare(
        `UPDATE tasks SET state = 'failed', error = @error, lease_expires_at = NULL, finished_at = @now, updated_at = @now
         WHERE id = @id AND state = 'running' AND lease_token = @token RETURNING *`,
      ),
      retry: db.prepare(
        `UPDATE tasks SET state = 'pending', error = @error, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = @now
         WHERE id = @id AND state = 'running' AND lease_token = @token RETURNING *`,
      ),
      release: db.prepare(`${GIVE_BACK} WHERE id = @id AND state = 'running' AND lease_token = @token RETURNING *`),
      releaseHeldBy: db.prepare(`${GIVE_BACK} WHERE state = 'running' AND worker_id IN (SELECT value FROM json_each(@workerIds)) RETURNING id`),
      lapsed: db.prepare(`SELECT * FROM tasks WHERE state = 'running' AND lease_expires_at <= ?`),
      lapseToPending: db.prepare(
        `UPDATE tasks SET state = 'pending', lease_token = NULL, lease_expires_at = NULL, worker_id = NULL,
           error = @error, updated_at = @now WHERE id = @id AND state = 'running'`,
      ),
      lapseToFailed: db.prepare(
        `UPDATE tasks SET state = 'failed', lease_expires_at = NULL, error = @error, finished_at = @now, updated_at = @now
         WHERE id = @id AND state = 'running'`,
      ),
      nextExpiry: db.prepare(`SELECT MIN(lease_expires_at) AS at FROM tasks WHERE state = 'running'`),
      counts: db.prepare('SELECT state, COUNT(*) AS n FROM tasks GROUP BY state'),
      finishedBefore: db.prepare(
        `SELECT id, image_key AS imageKey FROM tasks WHERE state IN ('done', 'failed') AND finished_at < ? AND id > ? ORDER BY id LIMIT ?`,
      ),
      hasImageKey: db.prepare('SELECT 1 FROM tasks WHERE image_key = ? LIMIT 1').pluck(),
      removeFinished: db.prepare(`DELETE FROM tasks WHERE id = ? AND state IN ('done', 'failed')`),
    };
  }

  async create(input: NewTask): Promise<TaskView> {
    const values = { ...input, traceId: input.traceId ?? null, jobId: input.jobId ?? null, idempotencyKey: input.idempotencyKey ?? null, now: this.now() };
    const row = (this.statements.insert.get(values) ?? this.statements.byKey.get(values.jobId, values.idempotencyKey)) as TaskRow;
    return toTaskView(row);
  }

  private row(id: number): TaskRow | undefined {
    return this.statements.get.get(id) as TaskRow | undefined;
  }

  async get(id: number): Promise<TaskView | undefined> {
    const row = this.row(id);
    return row && toTaskView(row);
  }

  async imageKey(id: number): Promise<string | undefined> {
    return this.row(id)?.image_key;
  }

  async list(state: TaskState | undefined, limit: number): Promise<TaskView[]> {
    const rows = state ? this.statements.listByState.all(state, limit) : this.statements.list.all(limit);
    return (rows as TaskRow[]).map(toTaskView);
  }

  async claim(workerId: string): Promise<ClaimedTask | undefined> {
    return this.db.transaction(() => {
      const next = this.statements.nextPending.get() as { id: number } | undefined;
      if (!next) return undefined;
      const now = this.now();
      const row = this.statements.claim.get({
        id: next.id,
        workerId,
        token: randomBytes(12).toString('base64url'),
        expires: now + this.options.leaseMs,
        now,
      }) as TaskRow;
      return toClaimedTask(row, this.options.leaseMs);
    })();
  }

  /** Why a lease-holding call was refused. */
  private refusal(id: number): LeaseOutcome {
    const row = this.row(id);
    if (!row) return 'unknown';
    return row.state === 'running' || row.state === 'pending' ? 'lease_expired' : 'not_running';
  }

  async renew(id: number, token: string): Promise<{ outcome: LeaseOutcome; leaseExpiresAt?: string }> {
    const now = this.now();
    const row = this.statements.renew.get({ id, token, expires: now + this.options.leaseMs, now }) as TaskRow | undefined;
    if (row) return { outcome: 'ok', leaseExpiresAt: iso(row.lease_expires_at)! };
    return { outcome: this.refusal(id) };
  }

  async complete(id: number, token: string, resultBytes: number | null): Promise<{ outcome: CompleteOutcome; task?: TaskView }> {
    const row = this.statements.complete.get({ id, token, resultBytes, now: this.now() }) as TaskRow | undefined;
    if (row) return { outcome: 'completed', task: toTaskView(row) };
    const current = this.row(id);
    if (!current) return { outcome: 'unknown' };
    if (current.state === 'done') return { outcome: current.lease_token === token ? 'already_completed' : 'already_done', task: toTaskView(current) };
    if (current.state === 'failed') return { outcome: 'failed', task: toTaskView(current) };
    return { outcome: 'lease_expired', task: toTaskView(current) };
  }

  async fail(id: number, token: string, error: string, retryable: boolean): Promise<{ outcome: LeaseOutcome; task?: TaskView }> {
    const current = this.row(id);
    if (!current) return { outcome: 'unknown' };
    const now = this.now();
    let row: TaskRow | undefined;
    if (!retryable) {
      row = this.statements.fail.get({ id, token, error, now }) as TaskRow | undefined;
    } else if (current.attempts >= this.options.maxAttempts) {
      row = this.statements.fail.get({ id, token, error: `gave up after ${current.attempts} attempts: ${error}`, now }) as TaskRow | undefined;
    } else {
      row = this.statements.retry.get({ id, token, error, now }) as TaskRow | undefined;
    }
    return row ? { outcome: 'ok', task: toTaskView(row) } : { outcome: this.refusal(id) };
  }

  async release(id: number, token: string): Promise<{ outcome: LeaseOutcome; task?: TaskView }> {
    const row = this.statements.release.get({ id, token, now: this.now() }) as TaskRow | undefined;
    return row ? { outcome: 'ok', task: toTaskView(row) } : { outcome: this.refusal(id) };
  }

  async releaseHeldBy(workerIds: string[]): Promise<number[]> {
    const rows = this.statements.releaseHeldBy.all({ workerIds: JSON.stringify(workerIds), now: this.now() }) as { id: number }[];
    return rows.map((r) => r.id).sort((x, y) => x - y);
  }

  async expireLeases(): Promise<{ returned: number[]; failed: number[] }> {
    return this.db.transaction(() => {
      const now = this.now();
      const returned: number[] = [];
      const failed: number[] = [];
      for (const row of this.statements.lapsed.all(now) as TaskRow[]) {
        const who = row.worker_id ? ` (worker ${row.worker_id})` : '';
        if (row.attempts >= this.options.maxAttempts) {
          this.statements.lapseToFailed.run({ id: row.id, now, error: `gave up after ${row.attempts} attempts: the lease lapsed each time${who}` });
          failed.push(row.id);
        } else {
          this.statements.lapseToPending.run({ id: row.id, now, error: `lease lapsed on attempt ${row.attempts}${who}` });
          returned.push(row.id);
        }
      }
      return { returned, failed };
    })();
  }

  async nextLeaseExpiry(): Promise<number | undefined> {
    return (this.statements.nextExpiry.get() as { at: number | null }).at ?? undefined;
  }

  async counts(): Promise<Record<TaskState, number>> {
    const counts: Record<TaskState, number> = { pending: 0, running: 0, done: 0, failed: 0 };
    for (const { state, n } of this.statements.counts.all() as { state: TaskState; n: number }[]) counts[state] = n;
    return counts;
  }

  async finishedBefore(cutoff: number, afterId: number, limit: number): Promise<{ id: number; imageKey: string }[]> {
    return this.statements.finishedBefore.all(cutoff, afterId, limit) as { id: number; imageKey: string }[];
  }

  async removeFinished(id: number): Promise<boolean> {
    return this.statements.removeFinished.run(id).changes > 0;
  }

  async hasImageKey(imageKey: string): Promise<boolean> {
    return this.statements.hasImageKey.get(imageKey) !== undefined;
  }

  /** The database's checkpoint and backup jobs (shared/sqliteBackup.ts). */
  housekeepingJobs(settings: SqliteHousekeepingSettings): HousekeepingJob[] {
    return sqliteJobs(this.db, 'tasks', this.dataDir, settings);
  }

  /** Only this process writes the file, and it wakes its own claims. */
  watch(): void {}

  async close(): Promise<void> {
    this.db.close();
  }
}
