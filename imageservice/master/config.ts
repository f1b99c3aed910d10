import { envInt, envString, serviceConfig, type ServiceConfig } from '../../shared/config.ts';
import { poolSettingsFromEnv, type PoolSettings } from '../../shared/postgres.ts';
import { envCron, envDuration } from '../../shared/housekeeping.ts';
import { sqliteHousekeepingDefaults, sqliteHousekeepingFromEnv, type SqliteHousekeepingSettings } from '../../shared/sqliteBackup.ts';
import { TASK_STORE_KINDS, type TaskStoreKind } from './taskStore.ts';

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
  /** Where the tasks are: embedded SQLite under DATA_DIR (default), or PostgreSQL shared by several masters. */
  store?: { kind: TaskStoreKind; pg?: PgSettings };
}

/** The master's scheduled jobs (shared/housekeeping.ts); a cron of undefined means off. */
export interface MasterHousekeeping {
  /** Done and failed tasks older than this go, with their images (imageservice/master/retention.ts). */
  retentionMs: number;
  /** When the retention runs (undefined: only on POST /tasks/prune). */
  retentionCron: string | undefined;
  sqlite: SqliteHousekeepingSettings;
}

/** How a master reaches PostgreSQL (TASK_STORE=postgres): the pool's settings (shared/postgres.ts), every query bounded, and its poll. */
export interface PgSettings extends PoolSettings {
  /** The backstop poll of waiting claims and lease expiries, for a lost notification (TASK_POLL_MS). */
  pollMs: number;
}

export const pgDefaults = { poolSize: 10, queryTimeoutMs: 10_000, connectTimeoutMs: 5_000, pollMs: 1_000 };

export const masterDefaults = {
  leaseMs: 30_000,
  maxAttempts: 3,
  maxPixels: 50_000_000,
  maxUploadBytes: 50 * 2 ** 20,
  maxClaimWaitMs: 30_000,
  housekeeping: { retentionMs: 7 * 86_400_000, retentionCron: '0 * * * *', sqlite: sqliteHousekeepingDefaults } as MasterHousekeeping,
  store: { kind: 'sqlite' } as NonNullable<MasterOptions['store']>,
};

/** TASK_STORE (sqlite | postgres) and, for postgres, DATABASE_URL and the pool's bounds. */
export function storeFromEnv(env: NodeJS.ProcessEnv = process.env): NonNullable<MasterOptions['store']> {
  const kind = envString('TASK_STORE', 'sqlite', env) as TaskStoreKind;
  if (!TASK_STORE_KINDS.includes(kind)) throw new Error(`TASK_STORE must be ${TASK_STORE_KINDS.join(' or ')}, got "${kind}"`);
  if (kind === 'sqlite') return { kind };
  return {
    kind,
    pg: {
      ...poolSettingsFromEnv('TASK_STORE=postgres', pgDefaults, env),
      pollMs: Math.max(10, envInt('TASK_POLL_MS', pgDefaults.pollMs, env)),
    },
  };
}

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
    store: storeFromEnv(env),
  };
}
