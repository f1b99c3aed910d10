/**
 * The events service's core: publishing (ids, per-topic sequence, the journal, then every
 * subscriber's queue), restoring after a restart, and the upkeep that keeps it bounded: keep-alive
 * expiry, the retention window, cursors saved, and the journal pruned of what nobody is owed.
 */
import type { Logger } from 'winston';
import { HttpError } from '../shared/errors.ts';
import type { Journal } from './journal.ts';
import type { Deliverer } from './delivery.ts';
import type { SubscriberCatalog } from './catalog.ts';
import type { EventTail } from './tail.ts';
import type { StoredEvent } from './event.ts';
import { AddressSubscriber, GroupSubscriber, type Subscriber } from './subscriber.ts';

export interface BrokerOptions {
  keepAliveMs: number;
  retentionMs: number;
  /** How often the upkeep runs (and at most how stale a saved cursor is). */
  upkeepMs: number;
}

export interface BrokerObserver {
  onPublished(events: StoredEvent[]): void;
  onDropped(subscriber: Subscriber, count: number, reason: 'overflow' | 'expired'): void;
}

export interface Publication {
  topic: string;
  contentType: string;
  payload: Buffer;
}

export class Broker {
  /** The last id handed out. */
  private head = 0;
  /** The last id put in the queues (ids between it and head are waiting for their commit). */
  private fannedOut = 0;
  private readonly seqs = new Map<string, number>();
  private pruned = 0;
  private timer?: NodeJS.Timeout;
  private stopping = false;

  constructor(
    private readonly catalog: SubscriberCatalog,
    private readonly journal: Journal,
    private readonly deliverer: Deliverer,
    private readonly tail: EventTail,
    private readonly options: BrokerOptions,
    private readonly observer: BrokerObserver,
    private readonly logger: Logger,
  ) {}

  /** The id the next subscriber starts from: it is owed what is published from now on. */
  get nextId(): number {
    return this.head + 1;
  }

  get lastId(): number {
    return this.fannedOut;
  }

  topics(): { topic: string; seq: number }[] {
    return [...this.seqs].map(([topic, seq]) => ({ topic, seq })).sort((a, b) => a.topic.localeCompare(b.topic));
  }

  /** Reads the journal back: ids and counters continue, and every subscriber gets what it was still owed. */
  restore(contents: ReturnType<Journal['load']>): void {
    this.head = this.fannedOut = this.pruned = contents.lastId;
    for (const [topic, seq] of contents.topics) this.seqs.set(topic, seq);
    const restored = contents.subscribers.map((row) => this.catalog.restore(row)).filter((s): s is Subscriber => s !== undefined);
    const cutoff = Date.now() - this.options.retentionMs;
    for (const event of contents.events) {
      const expired = event.time < cutoff;
      for (const subscriber of restored) {
        if (event.id <= subscriber.savedCursor || event.id < subscriber.since || !subscriber.filter.matches(event.topic)) continue;
        if (expired) subscriber.queue.noteDropped(1);
        else this.enqueue(subscriber, event);
      }
    }
    for (const subscriber of restored) this.deliverer.kick(subscriber);
    const owed = restored.reduce((sum, s) => sum + s.depth, 0);
    if (restored.length) this.logger.info(`restored ${restored.length} subscriber(s) with ${owed} event(s) still to deliver; ids continue after ${this.head}`);
  }

  start(): void {
    this.timer = setInterval(() => this.upkeep(), this.options.upkeepMs);
    this.timer.unref();
  }

  /** Journals the events (one commit with whatever else arrived meanwhile), then queues them. Resolves once durable. */
  async publish(items: Publication[]): Promise<StoredEvent[]> {
    if (this.stopping) throw new HttpError(503, 'stopping', 'the events service is shutting down; publish again shortly', { 'Retry-After': '1' });
    const time = Date.now();
    const events: StoredEvent[] = items.map((item) => {
      const seq = (this.seqs.get(item.topic) ?? 0) + 1;
      this.seqs.set(item.topic, seq);
      return { id: ++this.head, topic: item.topic, seq, time, contentType: item.contentType, payload: item.payload };
    });
    try {
      await this.journal.append(events);
    } catch (err) {
      this.logger.error(`could not journal ${events.length} event(s): ${(err as Error).message}`);
      throw new HttpError(503, 'journal_unavailable', 'the events could not be written to the journal; nothing was accepted', { 'Retry-After': '1' });
    }
    this.fanOut(events);
    return events;
  }

  private fanOut(events: StoredEvent[]): void {
    this.fannedOut = events[events.length - 1].id;
    for (const subscriber of this.catalog.all()) {
      let added = false;
      for (const event of events) {
        if (event.id < subscriber.since || !subscriber.filter.matches(event.topic)) continue;
        this.enqueue(subscriber, event);
        added = true;
      }
      if (added) this.deliverer.kick(subscriber);
    }
    this.observer.onPublished(events);
    this.tail.publish(events);
  }

  private enqueue(subscriber: Subscriber, event: StoredEvent): void {
    const dropped = subscriber.queue.push(event);
    if (dropped > 0) this.observer.onDropped(subscriber, dropped, 'overflow');
  }

  /** Keep-alives that lapsed, groups empty for too long, events past retention, cursors, and the journal's tail. */
  upkeep(): void {
    const now = Date.now();
    for (const subscriber of [...this.catalog.all()]) {
      if (subscriber instanceof AddressSubscriber && now - subscriber.lastSeenAt > this.options.keepAliveMs) {
        if (now - subscriber.lastSeenAt > this.options.keepAliveMs + this.options.retentionMs) {
          this.logger.info(`${subscriber.address} did not come back within the retention window; forgot it (${subscriber.depth} event(s) undelivered)`);
          this.catalog.remove(subscriber);
          continue;
        }
        if (subscriber.droppedAt === undefined) {
          subscriber.droppedAt = now;
          this.logger.info(`${subscriber.address} stopped calling registerAndKeepAlive; dropped it (its ${subscriber.depth} queued event(s), and what follows, wait for it within the retention window)`);
        }
      }
      if (subscriber instanceof GroupSubscriber && subscriber.emptySince !== undefined && now - subscriber.emptySince > this.options.retentionMs) {
        this.logger.info(`no instance of ${subscriber.serviceName} for the whole retention window; forgot its balanced subscription`);
        this.catalog.remove(subscriber);
        continue;
      }
      const expired = subscriber.queue.expire(now - this.options.retentionMs);
      if (expired > 0) this.observer.onDropped(subscriber, expired, 'expired');
    }
    this.saveCursors();
  }

  /** Writes cursors that moved, and prunes the journal up to the slowest subscriber. */
  private saveCursors(): void {
    let slowest = this.fannedOut;
    for (const subscriber of this.catalog.all()) {
      const cursor = subscriber.cursor(this.fannedOut);
      if (cursor > subscriber.savedCursor) {
        subscriber.savedCursor = cursor;
        this.journal.saveCursor(subscriber.key, cursor);
      }
      slowest = Math.min(slowest, cursor);
    }
    if (slowest > this.pruned) {
      this.pruned = slowest;
      this.journal.prune(slowest);
    }
  }

  /**
   * Refuses new publishes, lets deliveries in flight finish (up to graceMs), and saves the cursors;
   * what is still queued stays in the journal for the next start.
   */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    const subscribers = [...this.catalog.all()];
    for (const subscriber of subscribers) {
      subscriber.closed = true;
      subscriber.nudge();
    }
    const deadline = Date.now() + graceMs;
    while (subscribers.some((s) => s.draining) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    this.saveCursors();
  }
}
