/**
 * The platform's way in: a service declares the topics it handles when it starts, and gets a batching
 * publisher. `withEvents(options, { subscribe, publish: true })` wraps startService's options (as
 * withLogShipping does): it mounts the event endpoint with a handler per pattern, adds the registry
 * metadata that subscribes the service, and requires `events` when it publishes; `eventsOf(svc)` is
 * the service's publisher.
 */
import express from 'express';
import { prom } from '../shared/metrics.ts';
import type { Service, StartServiceOptions } from '../shared/service.ts';
import { EventPublisher, EventsClient, eventSubscriber, type EventHandler, type PublisherOptions } from './client.ts';
import type { PublishedRef } from './protocol.ts';
import { within } from '../shared/timeout.ts';

export const EVENTS_SERVICE = 'events';

export interface WithEventsOptions {
  /** Every instance of the service handles these (pattern -> handler): broadcast. */
  subscribe?: Record<string, EventHandler>;
  /** One instance of the service handles each of these (round-robin with failover): balanced. */
  balanced?: Record<string, EventHandler>;
  /** Give the service a publisher (eventsOf(svc)); true, or the publisher's bounds. */
  publish?: boolean | PublisherOptions;
  /** The event endpoint's path (default /event). */
  path?: string;
  onGap?: (dropped: number, subscription: string) => void;
  /** How long stop() waits for what is still being published (default 3 s). */
  flushTimeoutMs?: number;
}

/** A service's way out: publish and wait for the journal, or emit and forget. */
export class ServiceEvents {
  constructor(
    readonly publisher: EventPublisher,
    private readonly svc: Service,
    private readonly counted: { emitted: prom.Counter; dropped: prom.Counter<'reason'> },
  ) {}

  /** Whether an events service is up (in the provider table). */
  get available(): boolean {
    return this.svc.providers.has(EVENTS_SERVICE);
  }

  /** Resolves with {id, topic, seq} once journaled; waits (bounded) for an events service that is away. */
  publish(topic: string, payload?: unknown): Promise<PublishedRef> {
    return this.publisher.publish(topic, payload);
  }

  /**
   * Fire and forget, for news nobody must wait for: dropped at once (and counted) when no events
   * service is up, and counted when the publish fails later. It never throws.
   */
  emit(topic: string, payload?: unknown): void {
    if (!this.available) {
      this.counted.dropped.inc({ reason: 'absent' });
      return;
    }
    this.counted.emitted.inc();
    this.publisher.publish(topic, payload).catch((err: Error) => {
      this.counted.dropped.inc({ reason: 'failed' });
      this.svc.logger.debug(`event ${topic} not published: ${err.message}`);
    });
  }
}

const attached = new WeakMap<Service, ServiceEvents>();

/** Adds events to a service's options: subscriptions (endpoint and metadata) and, with publish, a publisher. */
export function withEvents(options: StartServiceOptions, events: WithEventsOptions): StartServiceOptions {
  const subscriber = eventSubscriber({ broadcast: events.subscribe, balanced: events.balanced, path: events.path, onGap: events.onGap });
  const subscribes = Object.keys(subscriber.metadata).length > 0;
  const { app, routes } = options;
  return {
    ...options,
    requiredServices: events.publish ? [...new Set([...(options.requiredServices ?? []), EVENTS_SERVICE])] : options.requiredServices,
    metadata: { ...options.metadata, ...subscriber.metadata },
    app: undefined,
    routes: (svc) => {
      const router = express.Router();
      if (subscribes) router.use(subscriber.router);
      if (app) router.use(app);
      if (routes) router.use(routes(svc));
      return router;
    },
    setup: (svc) => {
      options.setup?.(svc);
      if (!events.publish) return;
      const publisher = new EventPublisher(new EventsClient(svc.client(EVENTS_SERVICE)), events.publish === true ? {} : events.publish);
      const registers = [svc.metrics];
      const emitted = new prom.Counter({ name: 'events_client_emitted_total', help: 'Events handed to the publisher by emit()', registers });
      const dropped = new prom.Counter({ name: 'events_client_dropped_total', help: 'Events emit() dropped, by reason (absent: no events service up; failed)', labelNames: ['reason'], registers });
      new prom.Gauge({ name: 'events_client_buffered', help: 'Events waiting to be published', registers, collect() { this.set(publisher.buffered); } });
      attached.set(svc, new ServiceEvents(publisher, svc, { emitted, dropped }));
      // At the very end of stop(): what in-flight requests published still goes out, bounded.
      svc.addShutdownStep(async () => {
        await within(publisher.flush(), events.flushTimeoutMs ?? 3000);
        publisher.discard();
      });
    },
  };
}

/** The publisher of a service started withEvents(…, { publish }); throws for one started without. */
export function eventsOf(svc: Service): ServiceEvents {
  const events = attached.get(svc);
  if (!events) throw new Error(`${svc.name} was not started withEvents(…, { publish: true })`);
  return events;
}
