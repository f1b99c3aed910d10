import { envInt, serviceConfig, type ServiceConfig } from '../shared/config.ts';
import { sqliteHousekeepingFromEnv, type SqliteHousekeepingSettings } from '../shared/sqliteBackup.ts';

export const EVENTS_SERVICE = 'events';
export const EVENTS_DEFAULT_PORT = 3004;

/** The events service's settings (see README, "The events service"). */
export interface EventsOptions {
  config: ServiceConfig;
  /** An address that has not called registerAndKeepAlive for this long is dropped. */
  keepAliveMs: number;
  /** An event undelivered for this long is dropped for that subscriber (and leaves the journal). */
  retentionMs: number;
  /** Per subscriber: events and bytes queued; past either, the oldest are dropped and counted. */
  queueEvents: number;
  queueBytes: number;
  /** Largest POST /publish or /sendMessage body (413 above it). */
  bodyLimit: number;
  deliveryTimeoutMs: number;
  /** Events and bytes per delivery to a platform subscriber. */
  batchEvents: number;
  batchBytes: number;
  retryInitialMs: number;
  retryMaxMs: number;
  maxStreams: number;
  /** Accept registerAndKeepAlive/deregister of an address on another host than the caller's (behind NAT). */
  allowForeignHosts: boolean;
  /** The journal's checkpoint and backup schedules (default: shared/sqliteBackup.ts). */
  sqlite?: SqliteHousekeepingSettings;
}

export const eventsDefaults = {
  keepAliveMs: 30_000,
  retentionMs: 10 * 60 * 1000,
  queueEvents: 100_000,
  queueBytes: 64 * 1024 * 1024,
  bodyLimit: 1024 * 1024,
  deliveryTimeoutMs: 5000,
  batchEvents: 500,
  batchBytes: 256 * 1024,
  retryInitialMs: 100,
  retryMaxMs: 2000,
  maxStreams: 64,
  allowForeignHosts: false,
} satisfies Omit<EventsOptions, 'config'>;

/** The events service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): EventsOptions {
  const d = eventsDefaults;
  return {
    config: serviceConfig(EVENTS_SERVICE, EVENTS_DEFAULT_PORT, env),
    keepAliveMs: envInt('EVENTS_KEEPALIVE_MS', d.keepAliveMs, env),
    retentionMs: envInt('EVENTS_RETENTION_MS', d.retentionMs, env),
    queueEvents: Math.max(1, envInt('EVENTS_QUEUE_LIMIT', d.queueEvents, env)),
    queueBytes: Math.max(1, envInt('EVENTS_QUEUE_BYTES', d.queueBytes, env)),
    bodyLimit: envInt('EVENTS_BODY_LIMIT', d.bodyLimit, env),
    deliveryTimeoutMs: Math.max(1, envInt('EVENTS_DELIVERY_TIMEOUT_MS', d.deliveryTimeoutMs, env)),
    batchEvents: Math.max(1, envInt('EVENTS_BATCH_EVENTS', d.batchEvents, env)),
    batchBytes: Math.max(1, envInt('EVENTS_BATCH_BYTES', d.batchBytes, env)),
    retryInitialMs: Math.max(1, envInt('EVENTS_RETRY_INITIAL_MS', d.retryInitialMs, env)),
    retryMaxMs: Math.max(1, envInt('EVENTS_RETRY_MAX_MS', d.retryMaxMs, env)),
    maxStreams: envInt('EVENTS_MAX_STREAMS', d.maxStreams, env),
    allowForeignHosts: (env.EVENTS_ALLOW_FOREIGN_HOSTS ?? String(d.allowForeignHosts)) === 'true',
    sqlite: sqliteHousekeepingFromEnv(env),
  };
}
