import type { Logger } from 'winston';
import { envString, serviceConfig, type ServiceConfig } from '../shared/config.ts';
import { poolSettingsFromEnv, type PoolBounds } from '../shared/postgres.ts';
import { sqliteHousekeepingFromEnv, type SqliteHousekeepingSettings } from '../shared/sqliteBackup.ts';
import { GRADE_STORES, type GradeStoreKind } from './store.ts';

export const GRADES_SERVICE = 'grades';
export const GRADES_DEFAULT_PORT = 6000;

/** Where grades keeps its data: SQLite under DATA_DIR, or the PostgreSQL at DATABASE_URL that instances share. */
export type GradesStoreSettings =
  | { kind: 'sqlite' }
  | ({ kind: 'postgres'; url: string; startTimeoutMs?: number } & Partial<PoolBounds>);

/** The PostgreSQL store's defaults: grades' own bounds, tighter than the master's (imageservice/master/config.ts). */
export const postgresDefaults = { poolSize: 10, connectTimeoutMs: 2000, queryTimeoutMs: 5000, startTimeoutMs: 30_000 };

/** The grades service's settings: the common ones (port, host, registry, DATA_DIR for its database), its store and its database's housekeeping. */
export interface GradesOptions {
  config?: Partial<ServiceConfig>;
  logger?: Logger;
  /** GRADES_STORE (default sqlite), with DATABASE_URL for postgres. */
  store?: GradesStoreSettings;
  /** The database's checkpoint and backup schedules (SQLITE_CHECKPOINT_CRON, SQLITE_BACKUP_CRON, SQLITE_BACKUP_KEEP). */
  sqlite?: SqliteHousekeepingSettings;
}

/** GRADES_STORE and, for postgres, DATABASE_URL (required) and the pool's bounds (shared/postgres.ts poolSettingsFromEnv, as the master reads them). */
export function storeFromEnv(env: NodeJS.ProcessEnv = process.env): GradesStoreSettings {
  const kind = envString('GRADES_STORE', 'sqlite', env) as GradeStoreKind;
  if (!GRADE_STORES.includes(kind)) throw new Error(`GRADES_STORE must be one of ${GRADE_STORES.join(', ')}, got "${kind}"`);
  if (kind === 'sqlite') return { kind };
  return { kind, ...poolSettingsFromEnv('GRADES_STORE=postgres', postgresDefaults, env) };
}

/** The grades service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): GradesOptions {
  return {
    config: serviceConfig(GRADES_SERVICE, GRADES_DEFAULT_PORT, env),
    store: storeFromEnv(env),
    sqlite: sqliteHousekeepingFromEnv(env),
  };
}
