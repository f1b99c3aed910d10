/**
 * Jobs in PostgreSQL, in the tasks' database (the tasks' migration 2 made the jobs table and the tasks' job
 * columns, pgSchema.ts), on a small pool of its own. Resuming a job NOTIFYs every master, as a new pending task does.
 */
import type pg from 'pg';
import type { Op } from '../ops.ts';
import type { TaskState } from '../protocol.ts';
import type { JobState, JobTaskView } from '../jobProtocol.ts';
import { asHttp, createPool } from './pgPool.ts';
import type { PgSettings } from './config.ts';
import { emptyCounts, toRecord, type JobRecord, type JobRow, type JobStore, type JobTaskSummary } from './jobStore.ts';

const NOW = 'tasks_now_ms()';

const SQL = {
  insert: `INSERT INTO jobs (name, op, state, created_at, updated_at) VALUES ($1, $2, 'active', ${NOW}, ${NOW}) RETURNING *`,
  get: 'SELECT * FROM jobs WHERE id = $1',
  list: 'SELECT * FROM jobs ORDER BY id DESC LIMIT $1',
  setState: `UPDATE jobs SET state = $2, updated_at = ${NOW} WHERE id = $1 AND state <> 'cancelled' RETURNING *`,
  cancel: `UPDATE jobs SET state = 'cancelled', updated_at = ${NOW} WHERE id = $1 RETURNING *`,
  summary: `SELECT state, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes, COALESCE(SUM(result_bytes), 0) AS "resultBytes",
              MIN(started_at) AS "startedAt", MAX(finished_at) AS "finishedAt"
            FROM tasks WHERE job_id = $1 GROUP BY state`,
  tasks: `SELECT id, state, idempotency_key, bytes, result_bytes, error, finished_at FROM tasks
          WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
  byKey: 'SELECT id FROM tasks WHERE job_id = $1 AND idempotency_key = $2',
  failUnfinished: `UPDATE tasks SET state = 'failed', error = $2, lease_expires_at = NULL, finished_at = ${NOW}, updated_at = ${NOW}
                   WHERE job_id = $1 AND state IN ('pending', 'running') RETURNING id`,
};

export class PgJobStore implements JobStore {
  private constructor(private readonly pool: pg.Pool) {}

  static async open(settings: PgSettings, onTrouble: (message: string) => void): Promise<PgJobStore> {
    // A few connections suffice: job calls are few next to claims and uploads.
    return new PgJobStore(createPool({ ...settings, poolSize: Math.min(settings.poolSize, 3) }, (err) => onTrouble(`an idle jobs connection failed (${err.message})`)));
  }

  private async query<R extends pg.QueryResultRow = JobRow>(text: string, values: unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (err) {
      throw asHttp(err);
    }
  }

  async create(name: string, op: Op): Promise<JobRecord> {
    return toRecord((await this.query(SQL.insert, [name, op]))[0]);
  }

  async get(id: number): Promise<JobRecord | undefined> {
    const [row] = await this.query(SQL.get, [id]);
    return row && toRecord(row);
  }

  async list(limit: number): Promise<JobRecord[]> {
    return (await this.query(SQL.list, [limit])).map(toRecord);
  }

  async setState(id: number, state: 'active' | 'paused'): Promise<JobRecord | undefined> {
    const [row] = await this.query(SQL.setState, [id, state]);
    // Other masters' claims wait on the notification, as for a new task.
    if (row && state === 'active') await this.query("SELECT pg_notify('tasks_pending', '')");
    return row ? toRecord(row) : this.get(id);
  }

  async summary(id: number): Promise<JobTaskSummary> {
    const summary: JobTaskSummary = { counts: emptyCounts(), bytes: 0, resultBytes: 0, startedAt: null, lastFinishedAt: null };
    type Group = { state: TaskState; n: number; bytes: number; resultBytes: number; startedAt: number | null; finishedAt: number | null };
    for (const group of await this.query<Group>(SQL.summary, [id])) {
      // COUNT and SUM come back as bigint or numeric: strings from pg.
      summary.counts[group.state] = Number(group.n);
      summary.bytes += Number(group.bytes);
      summary.resultBytes += Number(group.resultBytes);
      if (group.startedAt !== null) summary.startedAt = Math.min(summary.startedAt ?? Infinity, Number(group.startedAt));
      if (group.finishedAt !== null) summary.lastFinishedAt = Math.max(summary.lastFinishedAt ?? 0, Number(group.finishedAt));
    }
    return summary;
  }

  async tasks(id: number, afterId: number, limit: number): Promise<JobTaskView[]> {
    type Row = { id: number; state: TaskState; idempotency_key: string | null; bytes: number; result_bytes: number | null; error: string | null; finished_at: number | null };
    return (await this.query<Row>(SQL.tasks, [id, afterId, limit])).map((row) => ({
      id: Number(row.id),
      state: row.state,
      idempotencyKey: row.idempotency_key,
      bytes: Number(row.bytes),
      resultBytes: row.result_bytes === null ? null : Number(row.result_bytes),
      error: row.error,
      finishedAt: row.finished_at === null ? null : new Date(Number(row.finished_at)).toISOString(),
    }));
  }

  async taskByKey(jobId: number, key: string): Promise<number | undefined> {
    const [row] = await this.query<{ id: number }>(SQL.byKey, [jobId, key]);
    return row ? Number(row.id) : undefined;
  }

  async cancel(id: number, reason: string): Promise<{ job: JobRecord; failed: number[] } | undefined> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw asHttp(err);
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const [row] = (await client.query<JobRow>(SQL.cancel, [id])).rows;
      if (!row) {
        await client.query('ROLLBACK');
        return undefined;
      }
      const failed = (await client.query<{ id: number }>(SQL.failUnfinished, [id, reason])).rows.map((r) => Number(r.id));
      await client.query('COMMIT');
      return { job: toRecord(row), failed };
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
      throw asHttp(err);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
