/**
 * Every subscriber, by key: addresses that keep themselves alive, and the registered instances and
 * services that declared topics in their registry metadata. Each change is saved in the journal.
 */
import type { Logger } from 'winston';
import type { Journal, SubscriberRow } from './journal.ts';
import { TopicFilter, patternProblem } from './topics.ts';
import { DEFAULT_EVENT_PATH, METADATA_BALANCED, METADATA_BROADCAST, METADATA_PATH, splitPatterns } from './protocol.ts';
import type { FollowerSink } from '../registry/follower.ts';
import type { InstanceView } from '../registry/protocol.ts';
import {
  AddressSubscriber,
  GroupSubscriber,
  InstanceSubscriber,
  addressKey,
  groupKey,
  instanceKey,
  type Subscriber,
  type SubscriberSettings,
  type SubscriberSpec,
} from './subscriber.ts';

/** What the catalog needs to know of a registered instance (a subset of the registry's InstanceView). */
export interface RegisteredInstance {
  serviceName: string;
  serviceURL: string;
  state: 'up' | 'down';
  metadata?: Record<string, string>;
}

interface Declared {
  broadcast: string[];
  balanced: string[];
  path: string;
}

const PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,199}$/;

export class SubscriberCatalog {
  private readonly byKey = new Map<string, Subscriber>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly journal: Journal,
    /** Settings for a subscriber that joins now (it is owed what is published from now on). */
    private readonly settings: (since?: number, registeredAt?: number) => SubscriberSettings,
    /** The cursor a subscriber is saved with. */
    private readonly cursorOf: (subscriber: Subscriber) => number,
    private readonly onAdded: (subscriber: Subscriber) => void,
    private readonly logger: Logger,
  ) {}

  all(): IterableIterator<Subscriber> {
    return this.byKey.values();
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): Subscriber | undefined {
    return this.byKey.get(key);
  }

  /** POST /registerAndKeepAlive: a new address joins (durably), a known one is seen again and retried at once. */
  async keepAlive(address: string, topics: string[]): Promise<AddressSubscriber> {
    const existing = this.byKey.get(addressKey(address));
    if (existing instanceof AddressSubscriber) {
      existing.lastSeenAt = Date.now();
      existing.droppedAt = undefined;
      existing.nudge();
      if (!existing.filter.sameAs(topics)) {
        existing.filter = new TopicFilter(topics);
        await this.save(existing);
      }
      return existing;
    }
    const subscriber = new AddressSubscriber(address, topics, this.settings());
    this.add(subscriber);
    await this.save(subscriber);
    return subscriber;
  }

  removeAddress(address: string): boolean {
    const subscriber = this.byKey.get(addressKey(address));
    if (!subscriber) return false;
    this.remove(subscriber);
    return true;
  }

  remove(subscriber: Subscriber): void {
    if (this.byKey.get(subscriber.key) !== subscriber) return;
    this.byKey.delete(subscriber.key);
    subscriber.closed = true;
    subscriber.nudge();
    this.journal.deleteSubscriber(subscriber.key);
  }

  /** A registered instance as the registry shows it now: its subscriptions are made to match. */
  syncInstance(instance: RegisteredInstance): void {
    const declared = this.declared(instance);
    const up = instance.state === 'up';
    const key = instanceKey(instance.serviceURL);
    const single = this.byKey.get(key);
    if (declared.broadcast.length === 0) {
      if (single) this.remove(single);
    } else if (single instanceof InstanceSubscriber) {
      const changed = !single.filter.sameAs(declared.broadcast) || single.path !== declared.path;
      single.filter = new TopicFilter(declared.broadcast);
      single.path = declared.path;
      this.setUp(single, up);
      if (changed) this.persist(single);
    } else {
      const subscriber = new InstanceSubscriber(instance.serviceName, instance.serviceURL, declared.path, declared.broadcast, this.settings());
      subscriber.up = up;
      this.add(subscriber);
      this.persist(subscriber);
    }
    this.syncMembership(instance, declared, up);
  }

  /** The instance left the registry (deregistered or evicted). */
  removeInstance(serviceName: string, serviceURL: string): void {
    const single = this.byKey.get(instanceKey(serviceURL));
    if (single) this.remove(single);
    const group = this.byKey.get(groupKey(serviceName));
    if (group instanceof GroupSubscriber && group.members.delete(serviceURL)) this.membersChanged(group);
  }

  /** The registry's full list: instances it no longer has are gone. */
  reconcile(instances: RegisteredInstance[]): void {
    for (const instance of instances) this.syncInstance(instance);
    const listed = new Set(instances.map((i) => i.serviceURL));
    for (const subscriber of [...this.byKey.values()]) {
      if (subscriber instanceof InstanceSubscriber && !listed.has(subscriber.serviceURL)) this.remove(subscriber);
      if (subscriber instanceof GroupSubscriber) {
        let changed = false;
        for (const url of [...subscriber.members.keys()]) if (!listed.has(url)) changed = subscriber.members.delete(url) || changed;
        if (changed) this.membersChanged(subscriber);
      }
    }
  }

  /** Puts back a subscriber saved before a restart (instances are taken as up until the registry says otherwise). */
  restore(row: SubscriberRow): Subscriber | undefined {
    let spec: SubscriberSpec;
    try {
      spec = JSON.parse(row.spec) as SubscriberSpec;
    } catch {
      this.logger.warn(`ignoring an unreadable subscriber in the journal: ${row.key}`);
      return undefined;
    }
    const settings = this.settings(row.since, spec.registeredAt);
    let subscriber: Subscriber;
    if (spec.kind === 'address') subscriber = new AddressSubscriber(spec.address, spec.topics, settings);
    else if (spec.kind === 'instance') subscriber = new InstanceSubscriber(spec.serviceName, spec.serviceURL, spec.path, spec.topics, settings);
    else {
      const group = new GroupSubscriber(spec.serviceName, spec.topics, settings);
      for (const m of spec.members) group.members.set(m.url, { url: m.url, path: m.path, topics: m.topics, up: true });
      if (group.members.size === 0) group.emptySince = Date.now();
      subscriber = group;
    }
    subscriber.savedCursor = row.cursor;
    this.add(subscriber);
    return subscriber;
  }

  private syncMembership(instance: RegisteredInstance, declared: Declared, up: boolean): void {
    const key = groupKey(instance.serviceName);
    let group = this.byKey.get(key) as GroupSubscriber | undefined;
    if (declared.balanced.length === 0) {
      if (group?.members.delete(instance.serviceURL)) this.membersChanged(group);
      return;
    }
    if (!group) {
      group = new GroupSubscriber(instance.serviceName, declared.balanced, this.settings());
      this.add(group);
    }
    const member = group.members.get(instance.serviceURL);
    const same = member && member.path === declared.path && new TopicFilter(member.topics).sameAs(declared.balanced);
    const cameUp = up && !member?.up;
    group.members.set(instance.serviceURL, { url: instance.serviceURL, path: declared.path, topics: declared.balanced, up });
    if (!same) this.membersChanged(group);
    if (cameUp) group.nudge();
  }

  /** A group's topics are every member's; a group left with no instance waits (journaled) for one to come. */
  private membersChanged(group: GroupSubscriber): void {
    const topics = [...new Set([...group.members.values()].flatMap((m) => m.topics))];
    if (topics.length > 0) group.filter = new TopicFilter(topics);
    group.emptySince = group.members.size === 0 ? (group.emptySince ?? Date.now()) : undefined;
    this.persist(group);
  }

  private setUp(subscriber: InstanceSubscriber, up: boolean): void {
    const cameUp = up && !subscriber.up;
    subscriber.up = up;
    if (cameUp) subscriber.nudge();
  }

  private add(subscriber: Subscriber): void {
    this.byKey.set(subscriber.key, subscriber);
    this.onAdded(subscriber);
  }

  /** Saves in the background (the failure is logged by save). */
  private persist(subscriber: Subscriber): void {
    this.save(subscriber).catch(() => undefined);
  }

  private save(subscriber: Subscriber): Promise<void> {
    return this.journal
      .saveSubscriber({ key: subscriber.key, spec: JSON.stringify(subscriber.spec()), since: subscriber.since, cursor: this.cursorOf(subscriber) })
      .catch((err: Error) => {
        this.logger.error(`could not save subscriber ${subscriber.key}: ${err.message}`);
        throw err;
      });
  }

  /** The topics and path an instance declared in its metadata; bad patterns are left out (and said once). */
  private declared(instance: RegisteredInstance): Declared {
    const metadata = instance.metadata ?? {};
    const valid = (field: string) =>
      splitPatterns(metadata[field]).filter((pattern) => {
        const problem = patternProblem(pattern);
        if (problem) this.warnOnce(`${instance.serviceURL} ${field}`, `${instance.serviceURL}: ignoring topic pattern ${JSON.stringify(pattern.slice(0, 80))} in ${field}: ${problem}`);
        return !problem;
      });
    let path = metadata[METADATA_PATH] || DEFAULT_EVENT_PATH;
    if (!PATH.test(path) || path.includes('..')) {
      this.warnOnce(`${instance.serviceURL} path`, `${instance.serviceURL}: ignoring ${METADATA_PATH} ${JSON.stringify(path.slice(0, 80))}; using ${DEFAULT_EVENT_PATH}`);
      path = DEFAULT_EVENT_PATH;
    }
    return { broadcast: valid(METADATA_BROADCAST), balanced: valid(METADATA_BALANCED), path };
  }

  private warnOnce(what: string, message: string): void {
    if (this.warned.has(what)) return;
    if (this.warned.size > 10_000) this.warned.clear();
    this.warned.add(what);
    this.logger.warn(message);
  }
}

/** The registry's changes as registry/follower.ts brings them, each view cut down to what the subscriptions need. */
export function catalogSink(catalog: SubscriberCatalog): FollowerSink {
  const registered = (view: InstanceView): RegisteredInstance => ({ serviceName: view.serviceName, serviceURL: view.serviceURL, state: view.state, metadata: view.metadata });
  return {
    reconcile: (instances) => catalog.reconcile(instances.map(registered)),
    sync: (instance) => catalog.syncInstance(registered(instance)),
    remove: (instance) => catalog.removeInstance(instance.serviceName, instance.serviceURL),
  };
}
