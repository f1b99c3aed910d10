import { envInt, envString, serviceConfig, type ServiceConfig } from '../shared/config.ts';

export const LOG_SERVICE_PORT = 4000;

/** The log service's settings (see README, "The log service"). */
export interface LogServiceOptions {
  config: ServiceConfig;
  /** Largest POST /log body, in bytes (413 above it). */
  bodyLimit: number;
  maxFileSize: string;
  retention: string;
  queueLimitBytes: number;
  retryAfterSeconds: number;
  indexEntries: number;
  indexBytes: number;
  queryScanBytes: number;
  batchMemory: number;
  batchMemoryMs: number;
  maxStreams: number;
}

const SIZE = /^\d+(\.\d+)?[kmg]$/i;
const RETENTION = /^\d+d?$/;

function matching(name: string, fallback: string, pattern: RegExp, hint: string, env: NodeJS.ProcessEnv): string {
  const value = envString(name, fallback, env);
  if (!pattern.test(value)) throw new Error(`${name} must be ${hint}, got "${value}"`);
  return value;
}

export function logServiceConfig(env: NodeJS.ProcessEnv = process.env): LogServiceOptions {
  return {
    config: serviceConfig('log', LOG_SERVICE_PORT, env),
    bodyLimit: envInt('LOG_BODY_LIMIT', 5 * 1024 * 1024, env),
    maxFileSize: matching('LOG_MAX_FILE_SIZE', '100m', SIZE, 'a size such as 512k, 100m or 1g', env),
    retention: matching('LOG_RETENTION', '14d', RETENTION, 'a number of days such as 14d, or a number of files such as 30', env),
    queueLimitBytes: envInt('LOG_QUEUE_LIMIT', 32 * 1024 * 1024, env),
    retryAfterSeconds: Math.max(1, envInt('LOG_RETRY_AFTER_SECONDS', 1, env)),
    indexEntries: envInt('LOG_INDEX_ENTRIES', 5_000, env),
    indexBytes: envInt('LOG_INDEX_BYTES', 8 * 1024 * 1024, env),
    queryScanBytes: envInt('LOG_QUERY_SCAN_BYTES', 128 * 1024 * 1024, env),
    batchMemory: envInt('LOG_BATCH_MEMORY', 100_000, env),
    batchMemoryMs: envInt('LOG_BATCH_MEMORY_MS', 10 * 60 * 1000, env),
    maxStreams: envInt('LOG_MAX_STREAMS', 64, env),
  };
}
