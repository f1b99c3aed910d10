/**
 * The master's connections to PostgreSQL (shared/postgres.ts, under the master's name) and how it answers a
 * database that is away (shared/postgres.ts isUnavailable): 503 with Retry-After, so workers and clients back
 * off and retry, rather than 500.
 */
import type pg from 'pg';
import { HttpError } from '../../shared/errors.ts';
import { clientConfig as sharedClientConfig, createPool as sharedCreatePool, isUnavailable } from '../../shared/postgres.ts';
import type { PgSettings } from './config.ts';

const APPLICATION_NAME = 'switchboard-imagemaster';

/** The client settings the pool and the LISTEN connection share. */
export function clientConfig(settings: PgSettings): pg.ClientConfig {
  return sharedClientConfig(settings, APPLICATION_NAME);
}

export function createPool(settings: PgSettings, onIdleError: (err: Error) => void): pg.Pool {
  return sharedCreatePool(settings, APPLICATION_NAME, onIdleError);
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
