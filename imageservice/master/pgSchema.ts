/**
 * The tasks' schema on PostgreSQL, created and migrated by the master at start. Migrations are numbered
 * and recorded in schema_migrations (by component, so other services can keep theirs in the same
 * database); they run under a transaction-scoped advisory lock, so masters starting at once take turns
 * and each migration runs exactly once; a database migrated by a newer master is refused. A migration is never
 * edited once released: add the next one.
 */
import type pg from 'pg';
import { migrate as migrateSchema, type MigrationLedger } from '../../shared/postgres.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** One lock for every component's migrations: two services creating schema_migrations at once must not race. */
const MIGRATION_LOCK = 7_431_118_020_140;

export const TASK_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'tasks',
    sql: `
      CREATE TABLE tasks (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
        op TEXT NOT NULL,
        image_key TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        lease_token TEXT,
        lease_expires_at BIGINT,
        error TEXT,
        result_bytes BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        trace_id TEXT
      );
      CREATE INDEX tasks_by_state ON tasks (state, id);
      -- The claim's scan: pending and running rows only, however many are done.
      CREATE INDEX tasks_claimable ON tasks (id) WHERE state IN ('pending', 'running');
      CREATE INDEX tasks_by_lease ON tasks (lease_expires_at) WHERE state = 'running';
      CREATE INDEX tasks_by_image_key ON tasks (image_key);
      -- The database's clock in ms since epoch (now(): the transaction's start), so every master agrees on leases.
      CREATE FUNCTION tasks_now_ms() RETURNS BIGINT LANGUAGE sql STABLE AS
        $$ SELECT (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT $$;
      -- Whatever makes a task pending (an upload, a retry, a release, a lapse) wakes the claims of every master.
      CREATE FUNCTION tasks_notify_pending() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_notify('tasks_pending', ''); RETURN NULL; END $$;
      CREATE TRIGGER tasks_pending AFTER INSERT OR UPDATE OF state ON tasks
        FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION tasks_notify_pending();
    `,
  },
  {
    version: 2,
    name: 'jobs',
    sql: `
      -- Jobs (#17): a named group of tasks with one op; a paused job's pending tasks are not claimed.
      CREATE TABLE jobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        op TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'cancelled')),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX jobs_by_state ON jobs (state) WHERE state <> 'active';
      ALTER TABLE tasks ADD COLUMN job_id BIGINT REFERENCES jobs (id), ADD COLUMN idempotency_key TEXT;
      -- One task per key and job, whatever the retries.
      CREATE UNIQUE INDEX tasks_by_job_key ON tasks (job_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE INDEX tasks_by_job ON tasks (job_id, id) WHERE job_id IS NOT NULL;
    `,
  },
];

/** The rows of `component` in schema_migrations (shared by every component in the database, keyed by component). */
function ledger(component: string): MigrationLedger {
  return {
    subject: 'the task database',
    lock: MIGRATION_LOCK,
    async prepare(client) {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        component TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (component, version)
      )`);
    },
    async applied(client) {
      return (await client.query<{ version: number }>('SELECT version FROM schema_migrations WHERE component = $1', [component])).rows.map((r) => r.version);
    },
    async record(client, migration) {
      await client.query('INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)', [component, migration.version, migration.name]);
    },
  };
}

/** Applies the migrations of `component` not yet recorded, in order (shared/postgres.ts); gives the versions it applied. */
export async function migrate(pool: pg.Pool, component: string, migrations: Migration[]): Promise<number[]> {
  return migrateSchema(pool, ledger(component), migrations.map((m) => ({ version: m.version, name: m.name, apply: async (client) => void (await client.query(m.sql)) })));
}
