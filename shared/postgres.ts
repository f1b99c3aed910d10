/**
 * What every service on PostgreSQL has in common (grades, the image master): a pool in which every query is
 * bounded, the one rule for which errors mean "the database is away, try again shortly" rather than "this
 * statement is wrong", versioned migrations under an advisory lock, and a connection URL fit for a log line.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import { EqualJitterBackoff, type BackoffOptions } from './backoff.ts';
import { envInt, envOptional } from './config.ts';

let pgModule: typeof import('pg') | undefined;
/** pg on first use, not on import: a service on its embedded store never pays for the client (about 100 ms). */
function driver(): typeof import('pg') {
  return (pgModule ??= createRequire(import.meta.url)('pg') as typeof import('pg'));
}

/** How a service reaches PostgreSQL (poolSettingsFromEnv reads them, over each service's own defaults). */
export interface PoolSettings {
  /** postgres://user:password@host:port/database (DATABASE_URL). */
  url: string;
  /** Connections this process keeps at most. */
  poolSize: number;
  /** The longest a statement may run: the server's statement_timeout. */
  queryTimeoutMs: number;
  /** The longest to wait for a connection, a new one or one from the pool. */
  connectTimeoutMs: number;
}

/** The pool's bounds without the URL: what each service sets as its own defaults. */
export type PoolBounds = Omit<PoolSettings, 'url'>;

/** The shortest statement or connection bound accepted: below it nothing but a ping could finish. */
const MIN_TIMEOUT_MS = 100;

/**
 * DATABASE_URL (required, postgres:// or postgresql://) and the pool's bounds, PG_POOL_SIZE (at least 1),
 * PG_QUERY_TIMEOUT_MS and PG_CONNECT_TIMEOUT_MS (at least 100 ms each), over a service's own defaults: the one
 * reading of these variables, for grades and the master alike. `selectedBy` names the setting that chose
 * PostgreSQL (GRADES_STORE=postgres), for the message when the URL is missing or not a PostgreSQL one.
 */
export function poolSettingsFromEnv(selectedBy: string, defaults: PoolBounds, env: NodeJS.ProcessEnv = process.env): PoolSettings {
  const url = envOptional('DATABASE_URL', env);
  if (!url || !/^postgres(ql)?:\/\//.test(url)) {
    throw new Error(`${selectedBy} needs DATABASE_URL=postgres://user:password@host:port/database${url ? `, got "${redactUrl(url)}"` : ''}`);
  }
  return {
    url,
    poolSize: Math.max(1, envInt('PG_POOL_SIZE', defaults.poolSize, env)),
    queryTimeoutMs: Math.max(MIN_TIMEOUT_MS, envInt('PG_QUERY_TIMEOUT_MS', defaults.queryTimeoutMs, env)),
    connectTimeoutMs: Math.max(MIN_TIMEOUT_MS, envInt('PG_CONNECT_TIMEOUT_MS', defaults.connectTimeoutMs, env)),
  };
}

const INT8 = 20;
/** BIGINT ids, times and counts as numbers (exact below 2^53) instead of strings, for these connections only. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 ? (value: string) => Number(value) : driver().types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** The settings of every connection, pooled or not (a LISTEN connection); `applicationName` shows in pg_stat_activity. */
export function clientConfig(settings: Omit<PoolSettings, 'poolSize'>, applicationName: string): pg.ClientConfig {
  return {
    connectionString: settings.url,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.queryTimeoutMs,
    // The client's own bound, a little past the server's, for a server that stopped answering altogether.
    query_timeout: settings.queryTimeoutMs + 1_000,
    // A transaction its client abandoned mid-way must not hold its locks for ever.
    idle_in_transaction_session_timeout: settings.queryTimeoutMs * 2,
    keepAlive: true,
    types,
    application_name: applicationName,
  };
}

export function createPool(settings: PoolSettings, applicationName: string, onIdleError: (err: Error) => void): pg.Pool {
  const pool = new (driver().Pool)({ ...clientConfig(settings, applicationName), max: settings.poolSize, idleTimeoutMillis: 30_000 });
  // An idle connection that the server closed (a restart) is an event, not a crash: the pool replaces it.
  pool.on('error', onIdleError);
  return pool;
}

/** SQLSTATE classes in which every state is "not now": connection exception (08), insufficient resources (53). */
const UNAVAILABLE_CLASSES = new Set(['08', '53']);
/**
 * Single SQLSTATEs that are "not now": operator intervention (57000), a statement cancelled by statement_timeout
 * (57014), a server shutting down, crashed or still starting (57P01, 57P02, 57P03), a session the server ended
 * (57P05), the server's own system or I/O trouble (58000, 58030), and conflicts that a retry resolves
 * (40001, 40P01, 55P03). Not 57P04 (the database was dropped) nor 58P01/58P02 (a file a statement named): those
 * do not come back by themselves.
 */
const UNAVAILABLE_STATES = new Set(['57000', '57014', '57P01', '57P02', '57P03', '57P05', '58000', '58030', '40001', '40P01', '55P03']);
/** Socket errors on the way to the server (ENOENT: the Unix socket of a server that is not running). */
const UNAVAILABLE_SOCKET = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOENT',
]);
/** What node-postgres says when the connection, not the statement, failed (it sets no code for these). */
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Client was closed|not queryable/i;
/** A SQLSTATE: five digits or capitals (no class begins with E, so no errno looks like one). */
const SQLSTATE = /^[0-9A-DF-Z][0-9A-Z]{4}$/;

/**
 * Whether a failed query is the database being away (down, restarting, overloaded, too slow), not the query's
 * fault. A SQLSTATE decides by itself; without one, a socket error or the driver's own words for one.
 */
export function isUnavailable(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (UNAVAILABLE_SOCKET.has(code)) return true;
    if (SQLSTATE.test(code)) return UNAVAILABLE_CLASSES.has(code.slice(0, 2)) || UNAVAILABLE_STATES.has(code);
  }
  // Connecting to a name with several addresses fails with one error per address.
  if (err instanceof AggregateError) return err.errors.some(isUnavailable);
  return typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message);
}

/**
 * Runs `open` until it succeeds, waiting out a database that is away (isUnavailable) with jittered backoff
 * (`backoff`, the shared EqualJitterBackoff's settings): any other error is thrown at once, and so is one past `deadline` (ms since
 * the epoch; without one it waits as long as it takes). `waiting` hears of each wait, to say so as often as the
 * caller likes. The start-up of every service that keeps its state in PostgreSQL.
 */
export async function untilAvailable<T>(
  open: () => Promise<T>,
  options: { backoff: BackoffOptions; deadline?: number; waiting: (err: Error, attempt: number) => void },
): Promise<T> {
  const backoff = new EqualJitterBackoff(options.backoff);
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (err) {
      if (!isUnavailable(err) || (options.deadline !== undefined && Date.now() > options.deadline)) throw err;
      options.waiting(err as Error, attempt);
      await backoff.wait();
    }
  }
}

/** The connection URL without its password (in the userinfo or as a `password` parameter), for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    // Anything else may be a key=value string with the password in it: none of it.
    return 'DATABASE_URL (not a URL)';
  }
}

/** One step of a schema: applied once, in version order, and recorded in its component's ledger. Never edited once released. */
export interface Migration {
  version: number;
  name: string;
  apply(client: pg.PoolClient): Promise<void>;
}

/** Where a component records the migrations it applied (a table of its own, which `prepare` creates when missing). */
export interface MigrationLedger {
  /** What the messages call the database: "the grades database". */
  subject: string;
  /** The advisory lock that every instance migrating this ledger takes: a bigint key, or a name (hashtext). */
  lock: number | string;
  prepare(client: pg.PoolClient): Promise<void>;
  applied(client: pg.PoolClient): Promise<number[]>;
  record(client: pg.PoolClient, migration: Migration): Promise<void>;
}

/**
 * Brings the schema up to the newest migration in one transaction under a transaction-level advisory lock, so
 * instances that start at once queue here: the first migrates, the others find it done. A failure rolls
 * everything back, and the lock goes with the transaction. A database migrated past what this version knows is
 * refused: running on that schema could corrupt it. Answers the versions it applied.
 */
export async function migrate(pool: pg.Pool, ledger: MigrationLedger, migrations: readonly Migration[]): Promise<number[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    if (typeof ledger.lock === 'string') await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [ledger.lock]);
    else await client.query('SELECT pg_advisory_xact_lock($1)', [ledger.lock]);
    await ledger.prepare(client);
    const done = new Set(await ledger.applied(client));
    const newest = Math.max(0, ...done);
    const known = Math.max(0, ...migrations.map((m) => m.version));
    if (newest > known) throw new Error(`${ledger.subject} is at schema version ${newest}, newer than this version knows (${known}): upgrade this instance`);
    const applied: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;
      await migration.apply(client);
      await ledger.record(client, migration);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
    throw err;
  } finally {
    // A connection that could not even roll back is dropped, not handed to the next caller.
    client.release(broken);
  }
}
