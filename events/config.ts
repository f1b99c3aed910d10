import { envInt, serviceConfig, type ServiceConfig } from '../shared/config.ts';

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
}

export function eventsConfig(env: NodeJS.ProcessEnv = process.env): EventsOptions {
  return {
    config: serviceConfig(EVENTS_SERVICE, EVENTS_DEFAULT_PORT, env),
    keepAliveMs: envInt('EVENTS_KEEPALIVE_MS', 30_000, env),
    retentionMs: envInt('EVENTS_RETENTION_MS', 10 * 60 * 1000, env),
    queueEvents: Math.max(1, envInt('EVENTS_QUEUE_LIMIT', 100_000, env)),
    queueBytes: Math.max(1, envInt('EVENTS_QUEUE_BYTES', 64 * 1024 * 1024, env)),
    bodyLimit: envInt('EVENTS_BODY_LIMIT', 1024 * 1024, env),
    deliveryTimeoutMs: Math.max(1, envInt('EVENTS_DELIVERY_TIMEOUT_MS', 5000, env)),
    batchEvents: Math.max(1, envInt('EVENTS_BATCH_EVENTS', 500, env)),
    batchBytes: Math.max(1, envInt('EVENTS_BATCH_BYTES', 256 * 1024, env)),
    retryInitialMs: Math.max(1, envInt('EVENTS_RETRY_INITIAL_MS', 100, env)),
    retryMaxMs: Math.max(1, envInt('EVENTS_RETRY_MAX_MS', 2000, env)),
    maxStreams: envInt('EVENTS_MAX_STREAMS', 64, env),
  };
}
