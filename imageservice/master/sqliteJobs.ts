/**
 * Jobs in the tasks' SQLite database (a connection of its own to DATA_DIR/tasks.sqlite), so a claim can skip
 * the tasks of paused jobs in one statement and cancelling a job is one transaction with its tasks.
 * The task store's migration gives tasks their job_id and idempotency_key; this file's gives the jobs table.
 */
import path from 'node:path';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { Op } from '../ops.ts';
import type { TaskState } from '../protocol.ts';
import type { JobState, JobTaskView } from '../jobProtocol.ts';
import { emptyCounts, toRecord, type JobRecord, type JobRow, type JobStore, type JobTaskSummary } from './jobStore.ts';

/** Versioned: each step runs once, in order, recorded in job_migrations. */
const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS jobs (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     name TEXT NOT NULL,
     op TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'cancelled')),
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state) WHERE state <> 'active';`,
  // A task's job and idempotency key: one task per key and job, whatever the retries.
  `ALTER TABLE tasks ADD COLUMN job_id INTEGER;
   ALTER TABLE tasks ADD COLUMN idempotency_key TEXT;
   CREATE UNIQUE INDEX tasks_by_job_key ON tasks (job_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
   CREATE INDEX tasks_by_job ON tasks (job_id, id) WHERE job_id IS NOT NULL;`,
];

/** The jobs table and the tasks' job columns; the task store runs this after creating tasks, before preparing its statements. */
export function migrateJobs(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS job_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const done = new Set((db.prepare('SELECT version FROM job_migrations').pluck().all() as number[]));
  db.transaction(() => {
    MIGRATIONS.forEach((sql, index) => {
      if (done.has(index + 1)) return;
      db.exec(sql);
      db.prepare('INSERT INTO job_migrations (version, applied_at) VALUES (?, ?)').run(index + 1, Date.now());
    });
  })();
}

export class SqliteJobStore implements JobStore {
  private readonly statements;

  private constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    this.statements = {
      insert: db.prepare(`INSERT INTO jobs (name, op, state, created_at, updated_at) VALUES (@name, @op, 'active', @now, @now) RETURNING *`),
      get: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      list: db.prepare('SELECT * FROM jobs ORDER BY id DESC LIMIT ?'),
      setState: db.prepare(`UPDATE jobs SET state = @state, updated_at = @now WHERE id = @id AND state <> 'cancelled' RETURNING *`),
      cancel: db.prepare(`UPDATE jobs SET state = 'cancelled', updated_at = @now WHERE id = @id RETURNING *`),
      summary: db.prepare(
        `SELECT state, COUNT(*) AS n, SUM(bytes) AS bytes, SUM(COALESCE(result_bytes, 0)) AS resultBytes,
           MIN(started_at) AS startedAt, MAX(finished_at) AS finishedAt
         FROM tasks WHERE job_id = ? GROUP BY state`,
      ),
      tasks: db.prepare(
        `SELECT id, state, idempotency_key, bytes, result_bytes, error, finished_at FROM tasks
         WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?`,
      ),
      byKey: db.prepare('SELECT id FROM tasks WHERE job_id = ? AND idempotency_key = ?').pluck(),
      failUnfinished: db.prepare(
        `UPDATE tasks SET state = 'failed', error = @reason, lease_expires_at = NULL, finished_at = @now, updated_at = @now
         WHERE job_id = @id AND state IN ('pending', 'running') RETURNING id`,
      ),
    };
  }

  /** Opens DATA_DIR/tasks.sqlite (WAL, as the task store has it), which the task store has already migrated. */
  static open(dataDir: string, now: () => number = Date.now): SqliteJobStore {
    fs.mkdirSync(dataDir, { recursive: true });
    const db = new Database(path.join(dataDir, 'tasks.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // The task store's connection writes too: wait for its lock instead of failing at once.
    db.pragma('busy_timeout = 5000');
    migrateJobs(db);
    return new SqliteJobStore(db, now);
  }

  async create(name: string, op: Op): Promise<JobRecord> {
    return toRecord(this.statements.insert.get({ name, op, now: this.now() }) as JobRow);
  }

  async get(id: number): Promise<JobRecord | undefined> {
    const row = this.statements.get.get(id) as JobRow | undefined;
    return row && toRecord(row);
  }

  async list(limit: number): Promise<JobRecord[]> {
    return (this.statements.list.all(limit) as JobRow[]).map(toRecord);
  }

  async setState(id: number, state: 'active' | 'paused'): Promise<JobRecord | undefined> {
    const row = this.statements.setState.get({ id, state, now: this.now() }) as JobRow | undefined;
    return row ? toRecord(row) : this.get(id);
  }

  async summary(id: number): Promise<JobTaskSummary> {
    const summary: JobTaskSummary = { counts: emptyCounts(), bytes: 0, resultBytes: 0, startedAt: null, lastFinishedAt: null };
    type Group = { state: TaskState; n: number; bytes: number; resultBytes: number; startedAt: number | null; finishedAt: number | null };
    for (const group of this.statements.summary.all(id) as Group[]) {
      summary.counts[group.state] = group.n;
      summary.bytes += group.bytes;
      summary.resultBytes += group.resultBytes;
      if (group.startedAt !== null) summary.startedAt = Math.min(summary.startedAt ?? Infinity, group.startedAt);
      if (group.finishedAt !== null) summary.lastFinishedAt = Math.max(summary.lastFinishedAt ?? 0, group.finishedAt);
    }
    return summary;
  }

  async tasks(id: number, afterId: number, limit: number): Promise<JobTaskView[]> {
    type Row = { id: number; state: TaskState; idempotency_key: string | null; bytes: number; result_bytes: number | null; error: string | null; finished_at: number | null };
    return (this.statements.tasks.all(id, afterId, limit) as Row[]).map((row) => ({
      id: row.id,
      state: row.state,
      idempotencyKey: row.idempotency_key,
      bytes: row.bytes,
      resultBytes: row.result_bytes,
      error: row.error,
      finishedAt: row.finished_at === null ? null : new Date(row.finished_at).toISOString(),
    }));
  }

  async taskByKey(jobId: number, key: string): Promise<number | undefined> {
    return (this.statements.byKey.get(jobId, key) as number | undefined) ?? undefined;
  }

  async cancel(id: number, reason: string): Promise<{ job: JobRecord; failed: number[] } | undefined> {
    return this.db.transaction(() => {
      const now = this.now();
      const row = this.statements.cancel.get({ id, now }) as JobRow | undefined;
      if (!row) return undefined;
      const failed = (this.statements.failUnfinished.all({ id, reason, now }) as { id: number }[]).map((r) => r.id);
      return { job: toRecord(row), failed };
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
