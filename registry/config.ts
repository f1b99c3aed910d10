import type { Logger } from 'winston';
import { envInt, envOptional, envString, serviceConfig } from '../shared/config.ts';

export interface RegistryOptions {
  host: string;
  port: number;
  dataDir: string;
  /** When set, POST, PUT and DELETE need `Authorization: Bearer <token>`. */
  token?: string;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** Timeouts or bad statuses in a row before an instance is down. */
  heartbeatFailures: number;
  heartbeatConcurrency: number;
  evictAfterMs: number;
  notifyTimeoutMs: number;
  notifyRetries: number;
  /** Let a caller register URLs on hosts other than its own address (for registrars behind NAT). */
  allowForeignHosts: boolean;
  logger?: Logger;
}

export const registryDefaults = {
  host: '127.0.0.1',
  port: 3000,
  heartbeatIntervalMs: 1000,
  heartbeatTimeoutMs: 1000,
  heartbeatFailures: 3,
  heartbeatConcurrency: 128,
  evictAfterMs: 10 * 60 * 1000,
  notifyTimeoutMs: 2000,
  notifyRetries: 3,
  allowForeignHosts: false,
} satisfies Partial<RegistryOptions>;

/** The registry's settings from the environment (see README). */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): RegistryOptions {
  const base = serviceConfig('registry', registryDefaults.port, env);
  return {
    host: base.host,
    port: base.port,
    dataDir: base.dataDir,
    token: envOptional('REGISTRY_TOKEN', env),
    heartbeatIntervalMs: envInt('HEARTBEAT_INTERVAL_MS', registryDefaults.heartbeatIntervalMs, env),
    heartbeatTimeoutMs: envInt('HEARTBEAT_TIMEOUT_MS', registryDefaults.heartbeatTimeoutMs, env),
    heartbeatFailures: Math.max(1, envInt('HEARTBEAT_FAILURES', registryDefaults.heartbeatFailures, env)),
    heartbeatConcurrency: Math.max(1, envInt('HEARTBEAT_CONCURRENCY', registryDefaults.heartbeatConcurrency, env)),
    evictAfterMs: envInt('EVICT_AFTER_MS', registryDefaults.evictAfterMs, env),
    notifyTimeoutMs: envInt('NOTIFY_TIMEOUT_MS', registryDefaults.notifyTimeoutMs, env),
    notifyRetries: envInt('NOTIFY_RETRIES', registryDefaults.notifyRetries, env),
    allowForeignHosts: envString('REGISTRY_ALLOW_FOREIGN_HOSTS', 'false', env) === 'true',
  };
}
