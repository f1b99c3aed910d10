import type { Logger } from 'winston';
import { serviceConfig, type ServiceConfig } from '../shared/config.ts';
import { sqliteHousekeepingFromEnv, type SqliteHousekeepingSettings } from '../shared/sqliteBackup.ts';

export const GRADES_SERVICE = 'grades';
export const GRADES_DEFAULT_PORT = 6000;

/** The grades service's settings: the common ones (port, host, registry, DATA_DIR for its database) and its database's housekeeping. */
export interface GradesOptions {
  config?: Partial<ServiceConfig>;
  logger?: Logger;
  /** The database's checkpoint and backup schedules (SQLITE_CHECKPOINT_CRON, SQLITE_BACKUP_CRON, SQLITE_BACKUP_KEEP). */
  sqlite?: SqliteHousekeepingSettings;
}

/** The grades service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): GradesOptions {
  return { config: serviceConfig(GRADES_SERVICE, GRADES_DEFAULT_PORT, env), sqlite: sqliteHousekeepingFromEnv(env) };
}
