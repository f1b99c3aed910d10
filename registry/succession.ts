/**
 * Which instance a restarted process replaces, so a restart leaves one instance, not a ghost beside it.
 * Pure rules over the records of one service; the Registry applies them.
 */
import type { Registration } from './protocol.ts';
import type { InstanceRecord } from './registry.ts';
import { appendTransition, HISTORY_LIMIT, type HistoryEntry } from './history.ts';

const hosts = new Map<string, { hostname: string; host: string } | null>();

/** hostname and host:port of a URL, memoised: a registration compares itself with every down instance of its service. */
function hostOf(url: string): { hostname: string; host: string } | null {
  let found = hosts.get(url);
  if (found === undefined) {
    try {
      const { hostname, host } = new URL(url);
      found = { hostname, host };
    } catch {
      found = null;
    }
    if (hosts.size > 100_000) hosts.clear();
    hosts.set(url, found);
  }
  return found;
}

/** Whether two URLs are on one host (the port may differ: a restarted process binds a new one). */
export function sameHost(a: string, b: string): boolean {
  const [x, y] = [hostOf(a), hostOf(b)];
  return x !== null && y !== null && x.hostname === y.hostname;
}

/** Another process on the same host: the same host name at another port (one port is one process; paths on it are not). */
function otherPortSameHost(a: string, b: string): boolean {
  const [x, y] = [hostOf(a), hostOf(b)];
  return x !== null && y !== null && x.hostname === y.hostname && x.host !== y.host;
}

/** An id held at another URL moves only to the same service on the same host, and only once its holder is down. */
export function mayTakeId(holder: InstanceRecord, registration: Registration): boolean {
  return holder.state === 'down' && holder.serviceName === registration.serviceName && sameHost(holder.serviceURL, registration.serviceURL);
}

/** The down instance of the service on this URL's host (at another port) that went down last: a new process there takes its place. */
export function downPredecessor(sameService: InstanceRecord[], serviceURL: string): InstanceRecord | undefined {
  let found: InstanceRecord | undefined;
  for (const record of sameService) {
    if (record.state !== 'down' || !otherPortSameHost(record.serviceURL, serviceURL)) continue;
    if (!found || (record.downSince ?? 0) > (found.downSince ?? 0)) found = record;
  }
  return found;
}

/**
 * A restored instance that was not checked since the restore went down: a new instance of its service on its
 * host that registered since the restore (`restoredAt`) and took no one's place was its restart (they raced).
 */
export function successorOf(record: InstanceRecord, sameService: InstanceRecord[], restoredAt: number): InstanceRecord | undefined {
  return sameService.find(
    (other) =>
      other !== record &&
      other.state === 'up' &&
      other.predecessorId === undefined &&
      other.lastSeenAt !== undefined &&
      other.registeredAt >= restoredAt &&
      otherPortSameHost(other.serviceURL, record.serviceURL),
  );
}

const restart = (at: number, predecessor: InstanceRecord): HistoryEntry => ({
  at,
  event: 'restarted',
  state: 'up',
  previous: { instanceId: predecessor.instanceId, serviceURL: predecessor.serviceURL },
});

/** What a new record starts with when it takes a predecessor's place: its history, one more restart. */
export function inheritance(predecessor: InstanceRecord, now: number): Pick<InstanceRecord, 'restarts' | 'predecessorId' | 'history'> {
  return { restarts: (predecessor.restarts ?? 0) + 1, predecessorId: predecessor.instanceId, history: appendTransition(predecessor.history, restart(now, predecessor)) };
}

/** A successor found after the fact takes its predecessor's history, in time order, before its own. */
export function inherit(successor: InstanceRecord, predecessor: InstanceRecord): void {
  const own = (successor.history ?? []).filter((entry) => entry.event !== 'registered');
  successor.predecessorId = predecessor.instanceId;
  successor.restarts = (predecessor.restarts ?? 0) + 1;
  successor.history = [...(predecessor.history ?? []), restart(successor.registeredAt, predecessor), ...own].sort((a, b) => a.at - b.at).slice(-HISTORY_LIMIT);
}

/**
 * What a registration of a known instance adds to its life. A new process brings no id (ours always send
 * theirs again), a new id, a new URL, or another pid: a restart; otherwise it registered again.
 */
export function reRegistration(existing: InstanceRecord, registration: Registration, instanceId: string, now: number): Pick<InstanceRecord, 'restarts' | 'predecessorId' | 'history'> {
  const pid = registration.metadata?.pid;
  const restarted =
    registration.instanceId === undefined || instanceId !== existing.instanceId || registration.serviceURL !== existing.serviceURL || (pid !== undefined && pid !== existing.metadata.pid);
  return {
    restarts: (existing.restarts ?? 0) + (restarted ? 1 : 0),
    predecessorId: instanceId !== existing.instanceId ? existing.instanceId : existing.predecessorId,
    history: appendTransition(existing.history, restarted ? restart(now, existing) : { at: now, event: 're-registered', state: 'up' }),
  };
}
