import { envInt, envOptional, envString, serviceConfig } from '../shared/config.ts';
import { registryDefaults, type RegistryOptions } from './server.ts';

/** The registry's settings from the environment (see README). */
export function registryConfig(env: NodeJS.ProcessEnv = process.env): RegistryOptions {
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
