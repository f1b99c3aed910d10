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
  /** Where registrations live: `file` (DATA_DIR, one registry) or `etcd` (shared by replicas). */
  store: 'file' | 'etcd';
  /** etcd's client URLs (ETCD_ENDPOINTS, comma-separated), for store `etcd`. */
  etcdEndpoints: string[];
  /** The lease under which a replica announces itself: a hung replica loses its share after this (etcd's minimum is 2). */
  replicaLeaseSeconds: number;
  /** How a replica names itself to the others (its URL is announced beside it). */
  replicaId?: string;
  /** The launcher's status file (PLATFORM_STATUS_FILE, set by npm start), shown on the dashboard as the platform's processes. */
  platformStatusFile?: string;
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
  store: 'file' as const,
  etcdEndpoints: ['http://127.0.0.1:2379'],
  replicaLeaseSeconds: 2,
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
    store: storeKind(envString('REGISTRY_STORE', registryDefaults.store, env)),
    etcdEndpoints: envString('ETCD_ENDPOINTS', registryDefaults.etcdEndpoints.join(','), env).split(',').map((u) => u.trim()).filter(Boolean),
    replicaLeaseSeconds: Math.max(2, envInt('REGISTRY_REPLICA_LEASE_SECONDS', registryDefaults.replicaLeaseSeconds, env)),
    replicaId: envOptional('REGISTRY_REPLICA_ID', env),
    platformStatusFile: envOptional('PLATFORM_STATUS_FILE', env),
  };
}

function storeKind(raw: string): 'file' | 'etcd' {
  if (raw === 'file' || raw === 'etcd') return raw;
  throw new Error(`REGISTRY_STORE must be file or etcd, got "${raw}"`);
}
