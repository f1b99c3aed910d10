import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { DownReason, InstanceFields, InstanceState, ProviderMap, Registration } from './protocol.ts';
import type { OutboundResult } from './outbound.ts';
import type { Health } from './healthPolicy.ts';
import { appendTransition, type HistoryEntry } from './history.ts';
import { downPredecessor, inherit, inheritance, mayTakeId, reRegistration, successorOf } from './succession.ts';
import { checkFailure } from './downReason.ts';
import { instanceRecord } from './instanceRecord.ts';

/** One registered instance, as the registry keeps it, with its state history. Times are epoch milliseconds. */
export type InstanceRecord = InstanceFields<number> & { history?: HistoryEntry[] };

export type ChangeType = 'registered' | 'updated' | 'up' | 'down' | 'deregistered' | 'evicted';

export interface RegistryChange {
  type: ChangeType;
  instance: InstanceRecord;
  /** Set on 'updated': what the instance was before (its id, name or URL may have changed). */
  previous?: { instanceId: string; serviceName: string; serviceURL: string; state: InstanceState };
  /** Learned from another replica through the shared store, not made here: it is not saved again. */
  remote?: boolean;
  /** Set on 'evicted' when a new process took its place: that instance's id. */
  replacedBy?: string;
}

export interface RegistryEvents {
  change: [RegistryChange];
}

/** A registration named an instanceId that another serviceURL holds. */
export class InstanceIdInUse extends Error {
  constructor(readonly holder: InstanceRecord) {
    super(`instanceId ${holder.instanceId} belongs to another instance (${holder.serviceName} at ${holder.serviceURL})`);
    this.name = 'InstanceIdInUse';
  }
}

/**
 * The instances (by id, by URL and by service name) and who requires what.
 * Every change is announced as a 'change' event; the notifier, the store and the stream listen.
 */
export class Registry extends EventEmitter<RegistryEvents> {
  private readonly byId = new Map<string, InstanceRecord>();
  private readonly idByUrl = new Map<string, string>();
  private readonly idsByName = new Map<string, Set<string>>();
  private readonly subscriberIdsByRequirement = new Map<string, Set<string>>();
  /** The down ones by service name: where a restarted process looks for the place it takes. */
  private readonly downIdsByName = new Map<string, Set<string>>();
  /** When saved instances were put back, and those not checked since: they may have been restarted meanwhile. */
  private restoredAt?: number;
  private readonly unconfirmed = new Set<string>();

  get size(): number {
    return this.byId.size;
  }

  get(instanceId: string): InstanceRecord | undefined {
    return this.byId.get(instanceId);
  }

  getByUrl(serviceURL: string): InstanceRecord | undefined {
    const id = this.idByUrl.get(serviceURL);
    return id === undefined ? undefined : this.byId.get(id);
  }

  all(): IterableIterator<InstanceRecord> {
    return this.byId.values();
  }

  list(names?: string[]): InstanceRecord[] {
    if (!names || names.length === 0) return [...this.byId.values()];
    return names.flatMap((name) => this.records(this.idsByName.get(name)));
  }

  /** URLs of the up instances of a service. */
  providers(name: string): string[] {
    const urls: string[] = [];
    for (const id of this.idsByName.get(name) ?? []) {
      const record = this.byId.get(id)!;
      if (record.state === 'up') urls.push(record.serviceURL);
    }
    return urls;
  }

  providerMap(names: string[]): ProviderMap {
    return Object.fromEntries(names.map((name) => [name, this.providers(name)]));
  }

  /** Instances that require the named service (they get patches about it). */
  dependentsOf(name: string): InstanceRecord[] {
    return this.records(this.subscriberIdsByRequirement.get(name));
  }

  private readonly records = (ids?: Set<string>): InstanceRecord[] => (ids ? [...ids].map((id) => this.byId.get(id)!) : []);

  /**
   * Adds or updates an instance; the same serviceURL updates, never duplicates. An instanceId belongs to its
   * serviceURL (another URL gets InstanceIdInUse) unless it came back (succession.ts), as a restart does.
   */
  register(registration: Registration, now = Date.now()): { record: InstanceRecord; created: boolean } {
    const holder = registration.instanceId === undefined ? undefined : this.byId.get(registration.instanceId);
    const atUrl = this.getByUrl(registration.serviceURL);
    let existing = atUrl;
    if (holder && holder.serviceURL !== registration.serviceURL) {
      if (!mayTakeId(holder, registration)) throw new InstanceIdInUse(holder);
      // Whatever still sits at the new URL is dead: the process there is this one.
      if (atUrl) this.remove(atUrl.instanceId, 'evicted', false, holder.instanceId);
      existing = holder;
    }
    const leaseExpiresAt = registration.ttlSeconds !== undefined ? now + registration.ttlSeconds * 1000 : undefined;
    if (!existing) {
      const instanceId = registration.instanceId ?? randomUUID();
      const predecessor = downPredecessor(this.records(this.downIdsByName.get(registration.serviceName)), registration.serviceURL);
      if (predecessor) this.remove(predecessor.instanceId, 'evicted', false, instanceId);
      const record = instanceRecord({
        instanceId,
        serviceName: registration.serviceName,
        serviceURL: registration.serviceURL,
        serviceUpdateURL: registration.serviceUpdateURL,
        heartbeatURL: registration.heartbeatURL,
        requiredServices: registration.requiredServices,
        metadata: registration.metadata ?? {},
        ttlSeconds: registration.ttlSeconds,
        leaseExpiresAt,
        state: 'up',
        registeredAt: now,
        upSince: now,
        lastSeenAt: now,
        consecutiveFailures: 0,
        ...(predecessor ? inheritance(predecessor, now) : { restarts: 0, history: [{ at: now, event: 'registered', state: 'up' }] }),
      });
      this.index(record);
      this.emit('change', { type: 'registered', instance: record });
      return { record, created: true };
    }

    const previous = { instanceId: existing.instanceId, serviceName: existing.serviceName, serviceURL: existing.serviceURL, state: existing.state };
    const instanceId = registration.instanceId ?? existing.instanceId;
    const life = reRegistration(existing, registration, instanceId, now);
    this.unindex(existing);
    Object.assign(existing, {
      instanceId,
      serviceName: registration.serviceName,
      serviceURL: registration.serviceURL,
      serviceUpdateURL: registration.serviceUpdateURL,
      heartbeatURL: registration.heartbeatURL,
      requiredServices: registration.requiredServices,
      metadata: registration.metadata ?? existing.metadata,
      ttlSeconds: registration.ttlSeconds,
      leaseExpiresAt,
      state: 'up' as const,
      upSince: existing.state === 'up' ? existing.upSince : now,
      downSince: undefined,
      downReason: undefined,
      lastSeenAt: now,
      consecutiveFailures: 0,
      lastError: undefined,
      ...life,
    });
    this.index(existing);
    this.emit('change', { type: 'updated', instance: existing, previous });
    return { record: existing, created: false };
  }

  /** Puts back an instance read from the store, without announcing it; false when it clashes with one already here. */
  restore(record: InstanceRecord, now = Date.now()): boolean {
    this.restoredAt ??= now;
    if (this.byId.has(record.instanceId) || this.idByUrl.has(record.serviceURL)) return false;
    this.index(instanceRecord(record));
    this.unconfirmed.add(record.instanceId);
    return true;
  }

  remove(instanceId: string, type: 'deregistered' | 'evicted' = 'deregistered', remote = false, replacedBy?: string): InstanceRecord | undefined {
    const record = this.byId.get(instanceId);
    if (!record) return undefined;
    this.unindex(record);
    this.emit('change', { type, instance: record, remote, replacedBy });
    return record;
  }

  /**
   * An instance as another replica saved it. A registration replaces what is here (the same URL under a
   * new id too); a state change or a renewal moves only the state, keeping this replica's latest check.
   * Announced as the change it is, marked remote.
   */
  applyRemote(saved: InstanceRecord, kind: ChangeType | 'lease'): void {
    const existing = this.byId.get(saved.instanceId) ?? this.getByUrl(saved.serviceURL);
    if (!existing) {
      const record = instanceRecord({ ...saved, consecutiveFailures: 0 });
      const urlHolder = this.getByUrl(record.serviceURL);
      if (urlHolder) this.remove(urlHolder.instanceId, 'deregistered', true);
      this.index(record);
      this.emit('change', { type: 'registered', instance: record, remote: true });
      return;
    }
    if (kind === 'registered' || kind === 'updated' || existing.instanceId !== saved.instanceId || existing.serviceURL !== saved.serviceURL) {
      const previous = { instanceId: existing.instanceId, serviceName: existing.serviceName, serviceURL: existing.serviceURL, state: existing.state };
      const urlHolder = this.getByUrl(saved.serviceURL);
      if (urlHolder && urlHolder !== existing) this.remove(urlHolder.instanceId, 'deregistered', true);
      this.unindex(existing);
      // Fields the saved record lacks were undefined when it was saved.
      const cleared = {
        serviceUpdateURL: undefined, heartbeatURL: undefined, ttlSeconds: undefined, leaseExpiresAt: undefined, upSince: undefined,
        downSince: undefined, downReason: undefined, lastError: undefined, restarts: undefined, predecessorId: undefined, history: undefined,
      };
      Object.assign(existing, cleared, saved, { consecutiveFailures: 0 });
      this.index(existing);
      this.emit('change', { type: 'updated', instance: existing, previous, remote: true });
      return;
    }
    const wasState = existing.state;
    const { state, upSince, downSince, downReason, lastError, leaseExpiresAt, restarts, history } = saved;
    Object.assign(existing, { state, upSince, downSince, downReason, lastError, leaseExpiresAt, restarts, history });
    (state === 'down' ? addTo : removeFrom)(this.downIdsByName, existing.serviceName, existing.instanceId);
    if (wasState !== saved.state) this.emit('change', { type: saved.state, instance: existing, remote: true });
  }

  markUp(record: InstanceRecord, now = Date.now()): void {
    record.consecutiveFailures = 0;
    record.lastError = undefined;
    record.lastSeenAt = now;
    this.unconfirmed.delete(record.instanceId);
    if (record.state === 'up') return;
    removeFrom(this.downIdsByName, record.serviceName, record.instanceId);
    record.state = 'up';
    record.upSince = now;
    record.downSince = undefined;
    record.downReason = undefined;
    record.history = appendTransition(record.history, { at: now, event: 'up', state: 'up' });
    this.emit('change', { type: 'up', instance: record });
  }

  /** Down for `reason`; one that is down already keeps the reason it went down for. */
  markDown(record: InstanceRecord, reason: DownReason, now = Date.now()): void {
    record.lastError = reason.message;
    if (record.state === 'down') return;
    addTo(this.downIdsByName, record.serviceName, record.instanceId);
    record.state = 'down';
    record.downSince = now;
    record.downReason = reason;
    record.upSince = undefined;
    record.history = appendTransition(record.history, { at: now, event: 'down', state: 'down', reason });
    this.emit('change', { type: 'down', instance: record });
    const successor = this.unconfirmed.delete(record.instanceId) ? successorOf(record, this.list([record.serviceName]), this.restoredAt!) : undefined;
    if (successor && this.remove(record.instanceId, 'evicted', false, successor.instanceId)) inherit(successor, record);
  }

  /** A heartbeat check's result, with the health the policy made of it; a change of state is announced. */
  recordCheck(record: InstanceRecord, result: OutboundResult, health: Health, now = Date.now()): void {
    record.lastCheckAt = now;
    record.lastLatencyMs = result.latencyMs;
    if (result.ok) {
      this.markUp(record, now);
      return;
    }
    record.consecutiveFailures = health.consecutiveFailures;
    record.lastError = result.message;
    if (health.state === 'down') this.markDown(record, checkFailure(result), now);
  }

  /** Extends a lease; a lapsed one comes back up. */
  renewLease(record: InstanceRecord, now = Date.now()): void {
    record.leaseExpiresAt = now + (record.ttlSeconds ?? 0) * 1000;
    record.lastCheckAt = now;
    this.markUp(record, now);
  }

  private index(record: InstanceRecord): void {
    this.byId.set(record.instanceId, record);
    this.idByUrl.set(record.serviceURL, record.instanceId);
    addTo(this.idsByName, record.serviceName, record.instanceId);
    if (record.state === 'down') addTo(this.downIdsByName, record.serviceName, record.instanceId);
    for (const name of record.requiredServices) addTo(this.subscriberIdsByRequirement, name, record.instanceId);
  }

  private unindex(record: InstanceRecord): void {
    this.unconfirmed.delete(record.instanceId);
    this.byId.delete(record.instanceId);
    this.idByUrl.delete(record.serviceURL);
    removeFrom(this.idsByName, record.serviceName, record.instanceId);
    removeFrom(this.downIdsByName, record.serviceName, record.instanceId);
    for (const name of record.requiredServices) removeFrom(this.subscriberIdsByRequirement, name, record.instanceId);
  }
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

