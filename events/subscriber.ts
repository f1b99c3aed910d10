/**
 * The three kinds of subscriber, each with one ordered queue: an address that keeps itself alive
 * (the reference API), one registered instance (broadcast), and a registered service whose instances
 * share the work (balanced, like a NATS queue group). They differ only in where a delivery goes.
 */
import { EqualJitterBackoff } from '../shared/backoff.ts';
import { EventQueue, type QueueBounds } from './queue.ts';
import { TopicFilter } from './topics.ts';
import type { StoredEvent } from './event.ts';
import type { SubscriberKind, SubscriberView } from './protocol.ts';

export type SubscriberSpec =
  | { kind: 'address'; address: string; topics: string[]; registeredAt: number }
  | { kind: 'instance'; serviceName: string; serviceURL: string; path: string; topics: string[]; registeredAt: number }
  | { kind: 'group'; serviceName: string; members: { url: string; path: string; topics: string[] }[]; topics: string[]; registeredAt: number };

/** What every subscriber is made with: when it joined, and the service's queue and retry settings. */
export interface SubscriberSettings {
  /** The first event id it is owed. */
  since: number;
  registeredAt: number;
  bounds: QueueBounds;
  retry: { initialMs: number; maxMs: number };
  batchMax: number;
}

export interface Member {
  url: string;
  path: string;
  up: boolean;
  /** What this instance declared (the group takes every member's). */
  topics: string[];
}

export abstract class Subscriber {
  abstract readonly kind: SubscriberKind;
  /** Reference subscribers get bodies as they were sent; the platform's get batches of NDJSON lines. */
  abstract readonly format: 'raw' | 'ndjson';
  filter: TopicFilter;
  readonly queue: EventQueue;
  /** Taken from the queue and being delivered (retried as they are until done or expired). */
  inFlight: StoredEvent[] = [];
  /** At most this many of inFlight per request (halved when a subscriber says 413). */
  batchLimit: number;
  readonly backoff: EqualJitterBackoff;
  draining = false;
  closed = false;
  failing = false;
  wake?: () => void;
  delivered = 0;
  retries = 0;
  lastDeliveredAt?: number;
  lastError?: string;
  lastRefusalLoggedAt?: number;
  /** The cursor last written to the journal. */
  savedCursor: number;

  readonly since: number;
  readonly registeredAt: number;

  constructor(
    readonly key: string,
    topics: string[],
    settings: SubscriberSettings,
  ) {
    this.filter = new TopicFilter(topics);
    this.queue = new EventQueue(settings.bounds);
    this.backoff = new EqualJitterBackoff(settings.retry);
    this.batchLimit = settings.batchMax;
    this.since = settings.since;
    this.registeredAt = settings.registeredAt;
    this.savedCursor = settings.since - 1;
  }

  /** The URL to deliver to next, skipping `excluded`; undefined when none is up. */
  abstract pick(excluded: ReadonlySet<string>): string | undefined;

  /** Whether anything is up to deliver to (without moving a round-robin turn). */
  abstract reachable(): boolean;

  abstract spec(): SubscriberSpec;

  abstract get mode(): 'broadcast' | 'balanced';

  abstract get target(): string;

  get depth(): number {
    return this.queue.length + this.inFlight.length;
  }

  /** Every event up to this id is done for it; `head` is the last id the service has handed out. */
  cursor(head: number): number {
    const oldest = this.inFlight[0] ?? this.queue.first();
    return oldest ? oldest.id - 1 : head;
  }

  /** Ends a wait for a retry or for an instance to come up. */
  nudge(): void {
    this.backoff.reset();
    this.wake?.();
  }

  protected state(): SubscriberView['state'] {
    if (!this.reachable()) return 'down';
    return this.failing ? 'failing' : 'up';
  }

  view(): SubscriberView {
    return {
      key: this.key,
      kind: this.kind,
      mode: this.mode,
      target: this.target,
      topics: [...this.filter.patterns],
      state: this.state(),
      registeredAt: new Date(this.registeredAt).toISOString(),
      queued: this.depth,
      queuedBytes: this.queue.sizeBytes,
      delivered: this.delivered,
      dropped: this.queue.droppedTotal,
      retries: this.retries,
      lastDeliveredAt: this.lastDeliveredAt ? new Date(this.lastDeliveredAt).toISOString() : undefined,
      lastError: this.lastError,
    };
  }
}


/**
 * A host:port that called POST /registerAndKeepAlive. When it stops calling it is dropped: no longer
 * listed or called. What it is owed stays queued for the retention window, in case it comes back.
 */
export class AddressSubscriber extends Subscriber {
  readonly kind = 'address';
  readonly format = 'raw';
  lastSeenAt = Date.now();
  /** Since when it has been dropped for not calling (undefined while it calls). */
  droppedAt?: number;
  private readonly url: string;

  constructor(readonly address: string, topics: string[], settings: SubscriberSettings) {
    super(addressKey(address), topics, settings);
    this.url = `http://${address}/event`;
  }

  get mode() {
    return 'broadcast' as const;
  }

  get target(): string {
    return this.address;
  }

  pick(excluded: ReadonlySet<string>): string | undefined {
    return this.droppedAt !== undefined || excluded.has(this.url) ? undefined : this.url;
  }

  reachable(): boolean {
    return this.droppedAt === undefined;
  }

  spec(): SubscriberSpec {
    return { kind: 'address', address: this.address, topics: [...this.filter.patterns], registeredAt: this.registeredAt };
  }

  override view(): SubscriberView {
    const view = { ...super.view(), lastSeenAt: new Date(this.lastSeenAt).toISOString() };
    return this.droppedAt === undefined ? view : { ...view, state: 'dropped' };
  }
}

/** One registered instance that subscribed in broadcast mode; follows its state in the registry. */
export class InstanceSubscriber extends Subscriber {
  readonly kind = 'instance';
  readonly format = 'ndjson';
  up = true;

  constructor(
    readonly serviceName: string,
    readonly serviceURL: string,
    public path: string,
    topics: string[],
    settings: SubscriberSettings,
  ) {
    super(instanceKey(serviceURL), topics, settings);
  }

  get mode() {
    return 'broadcast' as const;
  }

  get target(): string {
    return this.serviceURL;
  }

  pick(excluded: ReadonlySet<string>): string | undefined {
    const url = `${this.serviceURL}${this.path}`;
    return this.up && !excluded.has(url) ? url : undefined;
  }

  reachable(): boolean {
    return this.up;
  }

  spec(): SubscriberSpec {
    const { serviceName, serviceURL, path } = this;
    return { kind: 'instance', serviceName, serviceURL, path, topics: [...this.filter.patterns], registeredAt: this.registeredAt };
  }
}

/** A registered service whose instances subscribed in balanced mode: each event goes to one of them, round-robin. */
export class GroupSubscriber extends Subscriber {
  readonly kind = 'group';
  readonly format = 'ndjson';
  readonly members = new Map<string, Member>();
  /** Since when it has had no instance at all (it is forgotten after the retention window). */
  emptySince?: number;
  private turn = 0;

  constructor(readonly serviceName: string, topics: string[], settings: SubscriberSettings) {
    super(groupKey(serviceName), topics, settings);
  }

  get mode() {
    return 'balanced' as const;
  }

  get target(): string {
    return this.serviceName;
  }

  pick(excluded: ReadonlySet<string>): string | undefined {
    const urls = [...this.members.values()].filter((m) => m.up).map((m) => `${m.url}${m.path}`).filter((u) => !excluded.has(u));
    if (urls.length === 0) return undefined;
    return urls[this.turn++ % urls.length];
  }

  reachable(): boolean {
    for (const member of this.members.values()) if (member.up) return true;
    return false;
  }

  spec(): SubscriberSpec {
    const members = [...this.members.values()].map(({ url, path, topics }) => ({ url, path, topics }));
    return { kind: 'group', serviceName: this.serviceName, members, topics: [...this.filter.patterns], registeredAt: this.registeredAt };
  }

  override view(): SubscriberView {
    return { ...super.view(), instances: [...this.members.values()].map((m) => ({ url: m.url, state: m.up ? ('up' as const) : ('down' as const) })) };
  }
}

export const addressKey = (address: string) => `address:${address}`;
export const instanceKey = (serviceURL: string) => `instance:${serviceURL}`;
export const groupKey = (serviceName: string) => `group:${serviceName}`;
