import type { Logger } from 'winston';
import { envInt, envOptional, envString, serviceConfig, type ServiceConfig } from '../shared/config.ts';
import { sqliteHousekeepingFromEnv, type SqliteHousekeepingSettings } from '../shared/sqliteBackup.ts';
import { GRADE_STORES, type GradeStoreKind } from './store.ts';

export const GRADES_SERVICE = 'grades';
export const GRADES_DEFAULT_PORT = 6000;

/** Where grades keeps its data: SQLite under DATA_DIR, or the PostgreSQL at DATABASE_URL that instances share. */
export type GradesStoreSettings =
  | { kind: 'sqlite' }
  | { kind: 'postgres'; url: string; poolSize?: number; connectTimeoutMs?: number; statementTimeoutMs?: number; startTimeoutMs?: number };

/** The PostgreSQL store's defaults: grades' own bounds, tighter than the master's (imageservice/master/config.ts). */
export const postgresDefaults = { poolSize: 10, connectTimeoutMs: 2000, statementTimeoutMs: 5000, startTimeoutMs: 30_000 };

/** The grades service's settings: the common ones (port, host, registry, DATA_DIR for its database), its store and its database's housekeeping. */
export interface GradesOptions {
  config?: Partial<ServiceConfig>;
  logger?: Logger;
  /** GRADES_STORE (default sqlite), with DATABASE_URL for postgres. */
  store?: GradesStoreSettings;
  /** The database's checkpoint and backup schedules (SQLITE_CHECKPOINT_CRON, SQLITE_BACKUP_CRON, SQLITE_BACKUP_KEEP). */
  sqlite?: SqliteHousekeepingSettings;
}

/** GRADES_STORE and, for postgres, DATABASE_URL (required) and the pool's bounds (PG_POOL_SIZE, PG_QUERY_TIMEOUT_MS, PG_CONNECT_TIMEOUT_MS, as the master reads them). */
export function storeFromEnv(env: NodeJS.ProcessEnv = process.env): GradesStoreSettings {
  const kind = envString('GRADES_STORE', 'sqlite', env) as GradeStoreKind;
  if (!GRADE_STORES.includes(kind)) throw new Error(`GRADES_STORE must be one of ${GRADE_STORES.join(', ')}, got "${kind}"`);
  if (kind === 'sqlite') return { kind };
  const url = envOptional('DATABASE_URL', env);
  if (!url || !/^postgres(ql)?:\/\//.test(url)) throw new Error('GRADES_STORE=postgres needs DATABASE_URL=postgres://user:password@host:port/database');
  return {
    kind,
    url,
    poolSize: Math.max(1, envInt('PG_POOL_SIZE', postgresDefaults.poolSize, env)),
    statementTimeoutMs: envInt('PG_QUERY_TIMEOUT_MS', postgresDefaults.statementTimeoutMs, env),
    connectTimeoutMs: envInt('PG_CONNECT_TIMEOUT_MS', postgresDefaults.connectTimeoutMs, env),
  };
}

/** The grades service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): GradesOptions {
  return {
    config: serviceConfig(GRADES_SERVICE, GRADES_DEFAULT_PORT, env),
    store: storeFromEnv(env),
    sqlite: sqliteHousekeepingFromEnv(env),
  };
}
