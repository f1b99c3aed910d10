/** The log shipper's options, their defaults, and the same from the environment (see README). */
import { envInt } from '../shared/config.ts';

/** What the shipper needs from a provider table (shared/providers.ts ProviderTable fits). */
export interface LogProviders {
  pick(name: string): string | undefined;
  has(name: string): boolean;
  markSuspect?(url: string): void;
  onChange(name: string, listener: (urls: readonly string[]) => void): () => void;
}

export interface LogShipperOptions {
  providers: LogProviders;
  /** The sending service's name (for lines that don't carry one, and the X-Service-Name header). */
  serviceName: string;
  /** The required service's name: "log". */
  logServiceName?: string;
  /** Send when this many lines are waiting… */
  batchLines?: number;
  /** …or when the oldest waiting line is this old. */
  batchIntervalMs?: number;
  /** Largest request body; a bigger batch is split. Keep it under the log service's LOG_BODY_LIMIT. */
  maxBatchBytes?: number;
  /** Lines kept while the log service is unknown or down; newer lines are dropped (and counted) beyond it. */
  bufferLines?: number;
  /** Batches in flight at once. */
  concurrency?: number;
  timeoutMs?: number;
  /** How long the final flush may take when the logger ends. */
  flushTimeoutMs?: number;
  /** Told when shipping breaks down or recovers (not for every retry). */
  onStatus?: (message: string) => void;
  level?: string;
}

export type ShipperSettings = Required<Omit<LogShipperOptions, 'onStatus' | 'level' | 'providers'>>;

/**
 * Lines per batch. At 1,000 (about 250 KB of JSON) a busy service makes half the requests it made
 * at 500, and both it and the log service spend ~20 % less CPU per line (bench/logs.ts).
 */
const DEFAULT_BATCH_LINES = 1000;

/** The options with every default filled in. */
export function shipperSettings(options: LogShipperOptions): ShipperSettings {
  return {
    serviceName: options.serviceName,
    logServiceName: options.logServiceName ?? 'log',
    batchLines: Math.max(1, options.batchLines ?? DEFAULT_BATCH_LINES),
    batchIntervalMs: options.batchIntervalMs ?? 200,
    maxBatchBytes: options.maxBatchBytes ?? 1024 * 1024,
    bufferLines: options.bufferLines ?? 10_000,
    concurrency: Math.max(1, options.concurrency ?? 2),
    timeoutMs: options.timeoutMs ?? 10_000,
    flushTimeoutMs: options.flushTimeoutMs ?? 4000,
  };
}

/** The shipper's settings from the environment (see README). */
export function logShipperSettings(env: NodeJS.ProcessEnv = process.env): Partial<LogShipperOptions> {
  return {
    batchLines: envInt('LOG_SHIP_BATCH_LINES', DEFAULT_BATCH_LINES, env),
    batchIntervalMs: envInt('LOG_SHIP_INTERVAL_MS', 200, env),
    bufferLines: envInt('LOG_SHIP_BUFFER_LINES', 10_000, env),
    maxBatchBytes: envInt('LOG_SHIP_MAX_BYTES', 1024 * 1024, env),
    concurrency: envInt('LOG_SHIP_CONCURRENCY', 2, env),
    timeoutMs: envInt('LOG_SHIP_TIMEOUT_MS', 10_000, env),
    flushTimeoutMs: envInt('LOG_SHIP_FLUSH_TIMEOUT_MS', 4000, env),
  };
}
