import type { InstanceRecord } from './registry.ts';

/**
 * A record with every field present, always in this order, however it came (a registration here, another
 * replica's write read from etcd, the file store): every record then has one hidden class in V8, and the
 * reads of the check path, the expiry scan and the views stay monomorphic. A record spread from a parsed
 * one (`{ ...saved }`) gets a map of its own that the fields added later (lastCheckAt, lastError) don't
 * share: 1,000 records applied from another replica's saved JSON (as etcd's watch brings them) and then
 * checked had 957 maps, and the replica holding such records spent about a fifth more CPU than its peer on
 * the same number of checks (see docs/benchmarks.md, registry replicas).
 */
export function instanceRecord(fields: InstanceRecord): InstanceRecord {
  return {
    instanceId: fields.instanceId,
    serviceName: fields.serviceName,
    serviceURL: fields.serviceURL,
    serviceUpdateURL: fields.serviceUpdateURL,
    heartbeatURL: fields.heartbeatURL,
    requiredServices: fields.requiredServices,
    metadata: fields.metadata,
    ttlSeconds: fields.ttlSeconds,
    leaseExpiresAt: fields.leaseExpiresAt,
    state: fields.state,
    registeredAt: fields.registeredAt,
    upSince: fields.upSince,
    downSince: fields.downSince,
    downReason: fields.downReason,
    lastSeenAt: fields.lastSeenAt,
    lastCheckAt: fields.lastCheckAt,
    lastLatencyMs: fields.lastLatencyMs,
    consecutiveFailures: fields.consecutiveFailures,
    lastError: fields.lastError,
    restarts: fields.restarts,
    predecessorId: fields.predecessorId,
    history: fields.history,
  };
}
