/** An instance as the wire shows it (GET /services, the stream, a deregistration's answer): the record with its times as ISO strings. */
import type { InstanceHistory, InstanceView } from './protocol.ts';
import { transitionView } from './history.ts';
import type { InstanceRecord } from './registry.ts';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** Field by field, so nothing the registry keeps beside an instance's fields reaches the wire. */
export function toView(record: InstanceRecord): InstanceView {
  return {
    instanceId: record.instanceId,
    serviceName: record.serviceName,
    serviceURL: record.serviceURL,
    serviceUpdateURL: record.serviceUpdateURL,
    heartbeatURL: record.heartbeatURL,
    requiredServices: record.requiredServices,
    metadata: record.metadata,
    state: record.state,
    registeredAt: iso(record.registeredAt)!,
    lastCheckAt: iso(record.lastCheckAt),
    lastLatencyMs: record.lastLatencyMs,
    consecutiveFailures: record.consecutiveFailures,
    lastError: record.lastError,
    downReason: record.downReason,
    downSince: iso(record.downSince),
    upSince: iso(record.upSince),
    lastSeenAt: iso(record.lastSeenAt),
    ttlSeconds: record.ttlSeconds,
    leaseExpiresAt: iso(record.leaseExpiresAt),
    restarts: record.restarts ?? 0,
    predecessorId: record.predecessorId,
  };
}

/** GET /services/:instanceId/history: the instance and its transitions, oldest first. */
export function historyView(record: InstanceRecord): InstanceHistory {
  return { instance: toView(record), transitions: (record.history ?? []).map(transitionView) };
}
