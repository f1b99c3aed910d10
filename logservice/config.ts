import { envInt, envString, serviceConfig, type ServiceConfig } from '../shared/config.ts';
import { envCron } from '../shared/housekeeping.ts';

export const LOG_SERVICE = 'log';
export const LOG_SERVICE_PORT = 4000;

/** The log service's settings (see README, "The log service"). */
export interface LogServiceOptions {
  config: ServiceConfig;
  /** Largest POST /log body, in bytes (413 above it). */
  bodyLimit: number;
  maxFileSize: string;
  retention: string;
  /** The most the log files may hold together, in bytes (0: no limit), enforced at retentionCron. */
  retentionBytes: number;
  retentionCron: string | undefined;
  queueLimitBytes: number;
  retryAfterSeconds: number;
  indexEntries: number;
  indexBytes: number;
  queryScanBytes: number;
  batchMemory: number;
  batchMemoryMs: number;
  maxStreams: number;
}

export const logServiceDefaults = {
  bodyLimit: 5 * 1024 * 1024,
  maxFileSize: '100m',
  retention: '14d',
  retentionBytes: 2 * 1024 ** 3,
  retentionCron: '*/5 * * * *' as string | undefined,
  queueLimitBytes: 32 * 1024 * 1024,
  retryAfterSeconds: 1,
  indexEntries: 5_000,
  indexBytes: 8 * 1024 * 1024,
  queryScanBytes: 128 * 1024 * 1024,
  batchMemory: 100_000,
  batchMemoryMs: 10 * 60 * 1000,
  maxStreams: 64,
} satisfies Omit<LogServiceOptions, 'config'>;

const SIZE = /^\d+(\.\d+)?[kmg]$/i;
const RETENTION = /^\d+d?$/;

const TOTAL_SIZE = /^(0|\d+(\.\d+)?[kmg])$/i;
const UNIT_BYTES: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** "512k", "100m", "2g" in bytes ("0" is 0). */
function sizeBytes(name: string, text: string): number {
  if (text === '0') return 0;
  const bytes = Math.round(parseFloat(text) * UNIT_BYTES[text.slice(-1).toLowerCase()]);
  if (!Number.isSafeInteger(bytes)) throw new Error(`${name} is too large: "${text}"`);
  return bytes;
}

function matching(name: string, fallback: string, pattern: RegExp, hint: string, env: NodeJS.ProcessEnv): string {
  const value = envString(name, fallback, env);
  if (!pattern.test(value)) throw new Error(`${name} must be ${hint}, got "${value}"`);
  return value;
}

/** The log service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): LogServiceOptions {
  const d = logServiceDefaults;
  return {
    config: serviceConfig(LOG_SERVICE, LOG_SERVICE_PORT, env),
    bodyLimit: envInt('LOG_BODY_LIMIT', d.bodyLimit, env),
    maxFileSize: matching('LOG_MAX_FILE_SIZE', d.maxFileSize, SIZE, 'a size such as 512k, 100m or 1g', env),
    retention: matching('LOG_RETENTION', d.retention, RETENTION, 'a number of days such as 14d, or a number of files such as 30', env),
    retentionBytes: sizeBytes('LOG_RETENTION_BYTES', matching('LOG_RETENTION_BYTES', '2g', TOTAL_SIZE, 'a size such as 500m or 2g (0: no limit)', env)),
    retentionCron: envCron('LOG_RETENTION_CRON', d.retentionCron ?? 'off', env),
    queueLimitBytes: envInt('LOG_QUEUE_LIMIT', d.queueLimitBytes, env),
    retryAfterSeconds: Math.max(1, envInt('LOG_RETRY_AFTER_SECONDS', d.retryAfterSeconds, env)),
    indexEntries: envInt('LOG_INDEX_ENTRIES', d.indexEntries, env),
    indexBytes: envInt('LOG_INDEX_BYTES', d.indexBytes, env),
    queryScanBytes: envInt('LOG_QUERY_SCAN_BYTES', d.queryScanBytes, env),
    batchMemory: envInt('LOG_BATCH_MEMORY', d.batchMemory, env),
    batchMemoryMs: envInt('LOG_BATCH_MEMORY_MS', d.batchMemoryMs, env),
    maxStreams: envInt('LOG_MAX_STREAMS', d.maxStreams, env),
  };
}
