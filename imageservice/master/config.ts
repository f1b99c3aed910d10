import { envInt, serviceConfig, type ServiceConfig } from '../../shared/config.ts';
import { envCron, envDuration } from '../../shared/housekeeping.ts';
import { sqliteHousekeepingDefaults, sqliteHousekeepingFromEnv, type SqliteHousekeepingSettings } from '../../shared/sqliteBackup.ts';

export const MASTER_SERVICE = 'imagemaster';
export const MASTER_DEFAULT_PORT = 3003;

/** The master's settings (see README, "The image pipeline"). */
export interface MasterOptions {
  config?: Partial<ServiceConfig>;
  /** How long a claimed task is a worker's before it returns to pending (renewals extend it). */
  leaseMs?: number;
  /** Attempts (claims) after which a task that keeps failing or lapsing is failed. */
  maxAttempts?: number;
  /** Largest image accepted, in pixels (then 413). */
  maxPixels?: number;
  /** Largest upload accepted, in bytes (then 413). */
  maxUploadBytes?: number;
  /** The longest a claim may wait for work. */
  maxClaimWaitMs?: number;
  housekeeping?: MasterHousekeeping;
}

/** The master's scheduled jobs (shared/housekeeping.ts); a cron of undefined means off. */
export interface MasterHousekeeping {
  /** Done and failed tasks older than this go, with their images (imageservice/master/retention.ts). */
  retentionMs: number;
  /** When the retention runs (undefined: only on POST /tasks/prune). */
  retentionCron: string | undefined;
  sqlite: SqliteHousekeepingSettings;
}

export const masterDefaults = {
  leaseMs: 30_000,
  maxAttempts: 3,
  maxPixels: 50_000_000,
  maxUploadBytes: 50 * 2 ** 20,
  maxClaimWaitMs: 30_000,
  housekeeping: { retentionMs: 7 * 86_400_000, retentionCron: '0 * * * *', sqlite: sqliteHousekeepingDefaults } as MasterHousekeeping,
};

/** The master's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): MasterOptions {
  return {
    config: serviceConfig(MASTER_SERVICE, MASTER_DEFAULT_PORT, env),
    leaseMs: envInt('LEASE_MS', masterDefaults.leaseMs, env),
    maxAttempts: envInt('MAX_ATTEMPTS', masterDefaults.maxAttempts, env),
    maxPixels: envInt('MAX_PIXELS', masterDefaults.maxPixels, env),
    maxUploadBytes: envInt('MAX_UPLOAD_BYTES', masterDefaults.maxUploadBytes, env),
    maxClaimWaitMs: envInt('MAX_CLAIM_WAIT_MS', masterDefaults.maxClaimWaitMs, env),
    housekeeping: {
      retentionMs: envDuration('IMAGE_RETENTION', '7d', env),
      retentionCron: envCron('IMAGE_RETENTION_CRON', '0 * * * *', env),
      sqlite: sqliteHousekeepingFromEnv(env),
    },
  };
}
