/**
 * The client side of the events service: a typed client of its HTTP API, a publisher that batches
 * what is published at once, and (re-exported here) the /event endpoint a service mounts to receive its
 * topics (handler.ts) and the wrapper of startService's options that does both for a service (withEvents.ts).
 */
import axios, { type AxiosInstance } from 'axios';
import { ApiError, classifyUpstream } from '../shared/apiError.ts';
import { EqualJitterBackoff } from '../shared/backoff.ts';
import { readEventStream } from '../shared/sse.ts';
import { authorizationOf } from '../shared/auth.ts';
import { topicProblem } from './topics.ts';
import type { EventEnvelope, PublishAnswer, PublishedRef, PublishInput, SubscribersListing, TopicView } from './protocol.ts';

export { eventSubscriber, subscriptionMetadata, type EventHandler, type EventSubscriberOptions } from './handler.ts';
export { withEvents, eventsOf, ServiceEvents, EVENTS_SERVICE, type WithEventsOptions } from './withEvents.ts';

/** The events service answered with an error (status and code from its JSON error), or could not be reached (status 0). */
export class EventsError extends ApiError {
  override readonly name = 'EventsError';

  /** Worth trying again: unreachable, timed out, busy or stopping. */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

function toEventsError(err: unknown): EventsError {
  if (err instanceof EventsError) return err;
  const failure = classifyUpstream(err);
  if (failure?.kind === 'answered') return EventsError.answered(failure, 'events');
  if (failure && failure.kind !== 'no_provider') return EventsError.unreachable(failure, 'the events service');
  return new EventsError(0, (err as { code?: string }).code ?? 'unreachable', (err as Error).message);
}

/**
 * The typed client of the events service's HTTP API. Give it an axios instance: `svc.client('events')`
 * in a service (round-robin, failover), or `axios.create({ baseURL })` in a tool.
 */
export class EventsClient {
  constructor(private readonly http: AxiosInstance) {}

  static at(baseURL: string, timeoutMs = 10_000): EventsClient {
    return new EventsClient(axios.create({ baseURL, timeout: timeoutMs, maxRedirects: 0 }));
  }

  private async call<T>(run: (http: AxiosInstance) => Promise<{ data: T }>): Promise<T> {
    try {
      return (await run(this.http)).data;
    } catch (err) {
      throw toEventsError(err);
    }
  }

  /** One event or many (one request, one commit); resolves once they are journaled. */
  publish(events: PublishInput | PublishInput[]): Promise<PublishAnswer> {
    return this.call((http) => http.post<PublishAnswer>('/publish', events));
  }

  subscribers(): Promise<SubscribersListing> {
    return this.call((http) => http.get<SubscribersListing>('/subscribers'));
  }

  topics(): Promise<{ topics: TopicView[]; lastId: number }> {
    return this.call((http) => http.get('/topics'));
  }

  /** The reference API: subscribe (or stay subscribed) host:port, which then gets POST /event. */
  registerAndKeepAlive(address: string, topics?: string[]): Promise<{ address: string; registeredAt: string; topics: string[]; keepAliveMs: number }> {
    return this.call((http) => http.post('/registerAndKeepAlive', undefined, { params: { address, ...(topics ? { topics: topics.join(',') } : {}) } }));
  }

  deregister(address: string): Promise<{ deregistered: string }> {
    return this.call((http) => http.delete('/deregister', { params: { address } }));
  }

  /** The reference API: a body of any type, delivered to subscribers as it is. */
  sendMessage(body: string | Buffer, contentType = 'text/plain', topic?: string): Promise<PublishedRef> {
    return this.call((http) => http.post('/sendMessage', body, { headers: { 'content-type': contentType }, params: topic ? { topic } : {}, transformRequest: (data) => data }));
  }

  /** The reference listing: one "address : registered-at" line each. */
  listSubscribers(): Promise<string> {
    return this.call((http) => http.get<string>('/listSubscribers', { responseType: 'text', transformResponse: (data) => data }));
  }

  /** Follows the live tail (events accepted from now on) until the signal aborts. */
  async tail(onEvent: (event: EventEnvelope) => void, signal: AbortSignal, topics?: string[], onDropped?: (count: number) => void): Promise<void> {
    const base = String(this.http.defaults.baseURL ?? '').replace(/\/+$/, '');
    const query = topics?.length ? `?topic=${encodeURIComponent(topics.join(','))}` : '';
    await readEventStream(
      `${base}/events/stream${query}`,
      (event) => {
        if (event.event === 'dropped') onDropped?.((JSON.parse(event.data) as { dropped: number }).dropped);
        else if (event.event === 'message') onEvent(JSON.parse(event.data) as EventEnvelope);
      },
      signal,
      undefined,
      authorizationOf(this.http),
    );
  }
}

export interface PublisherOptions {
  /** Events per request (default 500). */
  maxBatch?: number;
  /** Events held while the events service is unreachable or busy; past it, publish() rejects at once (default 10,000). */
  maxBuffered?: number;
  /** How long an event may wait for the events service before its publish() rejects (default 30 s). */
  giveUpAfterMs?: number;
}

interface Waiting {
  event: PublishInput;
  since: number;
  resolve: (ref: PublishedRef) => void;
  reject: (err: Error) => void;
}

/**
 * Publishes with batching: everything published in the same turn of the event loop (and whatever
 * waits while a request is out) goes in one POST /publish. Failures that may pass (unreachable,
 * 503) are retried with backoff, in order; each publish() resolves with its id once journaled.
 * A retry after a timeout may publish a batch twice (subscribers drop repeats by id only within one publish).
 */
export class EventPublisher {
  private waiting: Waiting[] = [];
  private sending = false;
  private scheduled = false;
  private closed = false;
  private readonly backoff = new EqualJitterBackoff({ initialMs: 100, maxMs: 2000 });
  private readonly maxBatch: number;
  private readonly maxBuffered: number;
  private readonly giveUpAfterMs: number;

  constructor(
    private readonly client: EventsClient,
    options: PublisherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.maxBuffered = options.maxBuffered ?? 10_000;
    this.giveUpAfterMs = options.giveUpAfterMs ?? 30_000;
  }

  get buffered(): number {
    return this.waiting.length;
  }

  publish(topic: string, payload?: unknown): Promise<PublishedRef> {
    if (this.closed) return Promise.reject(new EventsError(0, 'closed', 'the publisher is closed'));
    const problem = topicProblem(topic);
    if (problem) return Promise.reject(new EventsError(400, 'invalid_topic', `topic ${problem}`));
    try {
      JSON.stringify(payload);
    } catch (err) {
      return Promise.reject(new EventsError(400, 'invalid_payload', `the payload is not JSON: ${(err as Error).message}`));
    }
    if (this.waiting.length >= this.maxBuffered) {
      return Promise.reject(new EventsError(0, 'buffer_full', `${this.waiting.length} events are already waiting for the events service`));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ event: { topic, payload }, since: Date.now(), resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when everything published so far has been answered. */
  async flush(): Promise<void> {
    while (this.waiting.length > 0 || this.sending) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /** Closes at once: what still waits is rejected (code 'closed'); answers how many. */
  discard(): number {
    this.closed = true;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.reject(new EventsError(0, 'closed', 'the publisher was closed before the events service took it'));
    return waiting.length;
  }

  private schedule(): void {
    if (this.scheduled || this.sending) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.send();
    });
  }

  private async send(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      let limit = this.maxBatch;
      while (this.waiting.length > 0) {
        const batch = this.waiting.slice(0, limit);
        try {
          const answer = await this.client.publish(batch.map((w) => w.event));
          this.waiting.splice(0, batch.length);
          this.backoff.reset();
          batch.forEach((w, i) => w.resolve(answer.events[i]));
        } catch (err) {
          const error = toEventsError(err);
          if (error.status === 413 && batch.length > 1) {
            limit = Math.ceil(batch.length / 2);
            continue;
          }
          if (!error.transient) {
            // Refused as it is (a bad topic, too big): retrying would not help, and would hold up the rest.
            this.waiting.splice(0, batch.length);
            for (const w of batch) w.reject(error);
            continue;
          }
          const now = Date.now();
          const expired = this.waiting.filter((w) => now - w.since > this.giveUpAfterMs);
          this.waiting = this.waiting.filter((w) => now - w.since <= this.giveUpAfterMs);
          for (const w of expired) w.reject(error);
          await this.backoff.wait();
        }
      }
    } finally {
      this.sending = false;
    }
  }
}
