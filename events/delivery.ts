/**
 * Delivers each subscriber's queue, in order, one request at a time per subscriber, with a
 * timeout, retries with backoff, and failover inside a balanced group. A slow or dead subscriber
 * only ever delays itself.
 */
import { AsyncResource } from 'node:async_hooks';
import type { Logger } from 'winston';
import type { Outbound, OutboundResult } from '../registry/outbound.ts';
import { lineOf, type StoredEvent } from './event.ts';
import {
  DROPPED_HEADER,
  EVENT_ID_HEADER,
  EVENT_SEQ_HEADER,
  EVENT_TOPIC_HEADER,
  JOURNAL_HEADER,
  NDJSON,
  SUBSCRIPTION_HEADER,
} from './protocol.ts';
import type { Subscriber } from './subscriber.ts';

export interface DeliveryOptions {
  timeoutMs: number;
  /** Events per request to a platform subscriber, and their bytes (at least one event). */
  batchMaxEvents: number;
  batchMaxBytes: number;
  retentionMs: number;
  journalId: string;
}

export interface DeliveryObserver {
  onDelivered(subscriber: Subscriber, events: StoredEvent[]): void;
  onRetry(subscriber: Subscriber): void;
  onDropped(subscriber: Subscriber, count: number, reason: 'rejected' | 'expired'): void;
}

/** Answers that say this request will never be taken as it is: retrying would stall the queue for nothing. */
const REJECTED = new Set([400, 404, 405, 410, 413, 415, 422]);
/** While nothing is up to deliver to, look again this often (the registry's news usually comes first). */
const IDLE_RECHECK_MS = 5000;

export class Deliverer {
  /** Delivery loops run in the context this was made in, not in that of the publish request that first woke them (its request id). */
  private readonly scope = new AsyncResource('EventsDelivery');

  constructor(
    private readonly outbound: Outbound,
    private readonly options: DeliveryOptions,
    private readonly observer: DeliveryObserver,
    private readonly logger: Logger,
  ) {}

  /** Starts delivering this subscriber's queue, or wakes its loop if it is waiting. */
  kick(subscriber: Subscriber): void {
    if (subscriber.draining) return;
    subscriber.draining = true;
    void this.scope.runInAsyncScope(() => this.drain(subscriber)).finally(() => {
      subscriber.draining = false;
      // Events that arrived as the loop ended.
      if (!subscriber.closed && subscriber.depth > 0) this.kick(subscriber);
    });
  }

  private async drain(subscriber: Subscriber): Promise<void> {
    while (!subscriber.closed) {
      if (subscriber.inFlight.length === 0) {
        if (subscriber.queue.length === 0) return;
        const raw = subscriber.format === 'raw';
        subscriber.inFlight = raw ? subscriber.queue.take(1, Infinity, () => 0) : subscriber.queue.take(this.options.batchMaxEvents, this.options.batchMaxBytes, lineBytes);
      }
      this.expireInFlight(subscriber);
      if (subscriber.inFlight.length === 0) continue;
      const outcome = await this.attempt(subscriber);
      if (outcome === 'done') {
        subscriber.failing = false;
        subscriber.backoff.reset();
      } else if (outcome === 'nobody') {
        await this.pause(subscriber, IDLE_RECHECK_MS);
      } else {
        subscriber.failing = true;
        await this.pause(subscriber, subscriber.backoff.nextDelayMs());
      }
    }
  }

  /** One round: the next target, and in a group every other up instance after a failure. */
  private async attempt(subscriber: Subscriber): Promise<'done' | 'failed' | 'nobody'> {
    const excluded = new Set<string>();
    for (;;) {
      const url = subscriber.pick(excluded);
      if (url === undefined) return excluded.size === 0 ? 'nobody' : 'failed';
      const batch = subscriber.inFlight.slice(0, subscriber.batchLimit);
      const reported = subscriber.queue.unreported;
      const result = await this.send(subscriber, url, batch, reported);
      if (result.ok) {
        subscriber.inFlight.splice(0, batch.length);
        subscriber.queue.unreported -= reported;
        subscriber.delivered += batch.length;
        subscriber.lastDeliveredAt = Date.now();
        subscriber.lastError = undefined;
        this.observer.onDelivered(subscriber, batch);
        return 'done';
      }
      if (subscriber.closed) return 'done';
      subscriber.lastError = `${url}: ${result.message}`;
      if (result.kind === 'status' && result.status === 413 && batch.length > 1) {
        subscriber.batchLimit = Math.max(1, Math.floor(batch.length / 2));
        continue;
      }
      if (result.kind === 'status' && REJECTED.has(result.status ?? 0)) {
        subscriber.inFlight.splice(0, batch.length);
        subscriber.queue.noteDropped(batch.length);
        this.observer.onDropped(subscriber, batch.length, 'rejected');
        // Once per subscriber per minute at most: a subscriber that refuses everything would otherwise fill the log.
        if (Date.now() - (subscriber.lastRefusalLoggedAt ?? 0) > 60_000) {
          subscriber.lastRefusalLoggedAt = Date.now();
          this.logger.warn(`${subscriber.key} refused ${batch.length} event(s) (${result.message}); they are dropped for it (counted as rejected)`);
        }
        return 'done';
      }
      this.observer.onRetry(subscriber);
      subscriber.retries++;
      if (this.logger.isDebugEnabled()) this.logger.debug(`delivery to ${subscriber.key} via ${url} failed: ${result.message}`);
      excluded.add(url);
      if (subscriber.kind !== 'group') return 'failed';
    }
  }

  private send(subscriber: Subscriber, url: string, batch: StoredEvent[], dropped: number): Promise<OutboundResult> {
    const headers: Record<string, string> = {
      [SUBSCRIPTION_HEADER]: subscriber.key,
      [JOURNAL_HEADER]: this.options.journalId,
    };
    if (dropped > 0) headers[DROPPED_HEADER] = String(dropped);
    if (subscriber.format === 'raw') {
      const [event] = batch;
      headers['content-type'] = event.contentType;
      headers[EVENT_ID_HEADER] = String(event.id);
      headers[EVENT_TOPIC_HEADER] = event.topic;
      headers[EVENT_SEQ_HEADER] = String(event.seq);
      return this.outbound.request('POST', url, this.options.timeoutMs, event.payload, false, headers);
    }
    headers['content-type'] = NDJSON;
    let body = '';
    for (const event of batch) body += `${lineOf(event)}\n`;
    return this.outbound.request('POST', url, this.options.timeoutMs, body, false, headers);
  }

  /** Events that waited past the retention window are dropped, also while they were being retried. */
  private expireInFlight(subscriber: Subscriber): void {
    const cutoff = Date.now() - this.options.retentionMs;
    let expired = 0;
    while (expired < subscriber.inFlight.length && subscriber.inFlight[expired].time < cutoff) expired++;
    if (expired === 0) return;
    subscriber.inFlight.splice(0, expired);
    subscriber.queue.noteDropped(expired);
    this.observer.onDropped(subscriber, expired, 'expired');
  }

  /** Waits ms, or until the subscriber is nudged (it came back) or closed. */
  private pause(subscriber: Subscriber, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        subscriber.wake = undefined;
        resolve();
      }
      subscriber.wake = done;
    });
  }
}

const lineBytes = (event: StoredEvent) => lineOf(event).length + 1;
