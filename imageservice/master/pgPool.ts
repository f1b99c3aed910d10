/**
 * The master's connections to PostgreSQL: a pool in which every query is bounded (connecting, waiting
 * for a connection, and running), and the one rule for which errors mean "the database is away" (503
 * with Retry-After, so workers and clients back off and retry) rather than a bug (500).
 */
import pg from 'pg';
import { HttpError } from '../../shared/errors.ts';
import type { PgSettings } from './config.ts';

const INT8 = 20;
/** BIGINT ids, times and counts as numbers (exact below 2^53) instead of strings, for this pool only. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** The client settings the pool and the LISTEN connection share. */
export function clientConfig(settings: PgSettings): pg.ClientConfig {
  return {
    connectionString: settings.url,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.queryTimeoutMs,
    // A little after the server's own limit, for a server that stopped answering altogether.
    query_timeout: settings.queryTimeoutMs + 1_000,
    keepAlive: true,
    types,
    application_name: 'switchboard-imagemaster',
  };
}

export function createPool(settings: PgSettings, onIdleError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(settings), max: settings.poolSize, idleTimeoutMillis: 30_000 });
  // An idle connection that the server closed (a restart) is an event, not a crash: the pool replaces it.
  pool.on('error', onIdleError);
  return pool;
}

/** SQLSTATEs of a server that is away, starting, shutting down or overloaded, or of a query that ran out of time. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '40001', '40P01', '55P03']);
const UNAVAILABLE_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Client was closed|not queryable/i;

export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && (UNAVAILABLE_STATES.has(code) || code.startsWith('08') || UNAVAILABLE_SOCKET.has(code))) return true;
  if (err instanceof AggregateError) return err.errors.some(isUnavailable);
  return err instanceof Error && UNAVAILABLE_MESSAGE.test(err.message);
}

/** The answer while the database is away: 503 with Retry-After, in the JSON error shape. */
export function databaseUnavailable(err: unknown): HttpError {
  const reason = (err as Error)?.message || (err as { code?: string })?.code || 'unreachable';
  return new HttpError(503, 'database_unavailable', `the task database is unavailable (${reason}); try again shortly`, { 'Retry-After': '1' });
}

/** A failed query as the master answers it: 503 while the database is away, else the error as it was. */
export function asHttp(err: unknown): unknown {
  return isUnavailable(err) ? databaseUnavailable(err) : err;
}
