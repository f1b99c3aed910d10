/**
 * The registry's news as events: instance.registered, instance.up, instance.down, instance.evicted and
 * instance.deregistered, each with the service's name, URL, instance id and the reason. The registry is
 * no registered service, so it finds the events service in its own catalog (an up instance of `events`).
 * Fire and forget: a change costs a push onto a bounded buffer, never a wait; with no events service
 * up, or past the buffer, the event is dropped and counted. Only changes made here are published
 * (a replica publishes what it decided, not what it learnt from another).
 */
import axios from 'axios';
import type { Logger } from 'winston';
import { prom } from '../shared/metrics.ts';
import { EventPublisher, EventsClient, EventsError, EVENTS_SERVICE } from '../events/client.ts';
import type { Registry, RegistryChange, InstanceRecord } from './registry.ts';
import { within } from '../shared/timeout.ts';

/** What each instance event carries. */
export interface InstanceEventPayload {
  serviceName: string;
  serviceURL: string;
  instanceId: string;
  state: InstanceRecord['state'];
  reason: string;
  /** When the registry made the change (ISO 8601). */
  time: string;
}

export interface RegistryEventsOptions {
  /** Events held while the events service is slow or unreachable (default 10,000). */
  maxBuffered?: number;
  /** How long one may wait for it before it is dropped (default 5 s). */
  giveUpAfterMs?: number;
  timeoutMs?: number;
}

const PUBLISHED: ReadonlySet<RegistryChange['type']> = new Set(['registered', 'up', 'down', 'evicted', 'deregistered']);

function reasonOf(change: RegistryChange): string {
  const { instance } = change;
  switch (change.type) {
    case 'registered':
      return instance.ttlSeconds ? `registered with a ${instance.ttlSeconds} s lease` : 'registered';
    case 'up':
      return instance.ttlSeconds ? 'its lease was renewed' : 'it answered its health check';
    case 'down':
      return instance.downReason?.message ?? instance.lastError ?? 'it stopped answering';
    case 'evicted':
      if (change.replacedBy) return `restarted: instance ${change.replacedBy} took its place`;
      return `down too long${instance.downReason ? ` (${instance.downReason.message})` : ''}`;
    default:
      return 'it deregistered';
  }
}

export class RegistryEventsPublisher {
  private readonly publisher: EventPublisher;
  private readonly published: prom.Counter;
  private readonly dropped: prom.Counter<'reason'>;
  private turn = 0;
  private readonly listener = (change: RegistryChange) => this.onChange(change);

  constructor(
    private readonly registry: Registry,
    metrics: prom.Registry,
    private readonly logger: Logger,
    options: RegistryEventsOptions = {},
  ) {
    const http = axios.create({ timeout: options.timeoutMs ?? 3000, maxRedirects: 0 });
    // Each request goes to the next up events instance the catalog holds, so none is needed at start.
    http.interceptors.request.use((config) => {
      const url = this.pick();
      if (!url) throw new EventsError(0, 'no_provider', 'no instance of the events service is up');
      config.baseURL = url;
      return config;
    });
    this.publisher = new EventPublisher(new EventsClient(http), { maxBuffered: options.maxBuffered ?? 10_000, giveUpAfterMs: options.giveUpAfterMs ?? 5000 });
    const registers = [metrics];
    this.published = new prom.Counter({ name: 'registry_events_published_total', help: 'Instance events the events service journaled', registers });
    this.dropped = new prom.Counter({
      name: 'registry_events_dropped_total',
      help: 'Instance events not published, by reason (absent: no events service up; overflow: the buffer was full; failed)',
      labelNames: ['reason'],
      registers,
    });
    const publisher = this.publisher;
    new prom.Gauge({ name: 'registry_events_buffered', help: 'Instance events waiting for the events service', registers, collect() { this.set(publisher.buffered); } });
    registry.on('change', this.listener);
  }

  private pick(): string | undefined {
    const urls = this.registry.providers(EVENTS_SERVICE);
    return urls.length ? urls[this.turn++ % urls.length] : undefined;
  }

  private onChange(change: RegistryChange): void {
    if (change.remote || !PUBLISHED.has(change.type)) return;
    if (this.registry.providers(EVENTS_SERVICE).length === 0) {
      this.dropped.inc({ reason: 'absent' });
      return;
    }
    const { instance } = change;
    const payload: InstanceEventPayload = {
      serviceName: instance.serviceName,
      serviceURL: instance.serviceURL,
      instanceId: instance.instanceId,
      state: instance.state,
      reason: reasonOf(change),
      time: new Date().toISOString(),
    };
    this.publisher.publish(`instance.${change.type}`, payload).then(
      () => this.published.inc(),
      (err: EventsError) => {
        this.dropped.inc({ reason: err.code === 'buffer_full' ? 'overflow' : 'failed' });
        if (err.code !== 'closed') this.logger.debug(`instance.${change.type} of ${instance.serviceURL} not published: ${err.message}`);
      },
    );
  }

  /** Stops listening; what still waits gets a moment (bounded) and is then dropped. */
  async close(waitMs = 1000): Promise<void> {
    this.registry.off('change', this.listener);
    await within(this.publisher.flush(), waitMs);
    this.publisher.discard();
  }
}
