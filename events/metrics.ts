import { prom } from '../shared/metrics.ts';
import type { BrokerObserver } from './broker.ts';
import type { DeliveryObserver } from './delivery.ts';
import type { SubscriberCatalog } from './catalog.ts';
import type { Journal } from './journal.ts';
import type { EventTail } from './tail.ts';

/** The events service's metrics, fed through the broker's and the deliverer's observer interfaces. */
export function eventsMetrics(
  registry: prom.Registry,
  catalog: SubscriberCatalog,
  journal: Journal,
  tail: EventTail,
): { broker: BrokerObserver; delivery: DeliveryObserver } {
  const registers = [registry];
  const published = new prom.Counter({ name: 'events_published_total', help: 'Events accepted (journaled)', registers });
  const delivered = new prom.Counter({ name: 'events_delivered_total', help: 'Events delivered to a subscriber (one per subscriber)', registers });
  const retried = new prom.Counter({ name: 'events_retried_total', help: 'Deliveries that failed and will be tried again', registers });
  const dropped = new prom.Counter({
    name: 'events_dropped_total',
    help: 'Events a subscriber will never get: overflow (queue bound), expired (retention window), rejected (a 4xx answer)',
    labelNames: ['reason'],
    registers,
  });
  const latency = new prom.Histogram({
    name: 'events_delivery_latency_seconds',
    help: 'From an event being accepted to its delivery being acknowledged (the oldest event of each delivery)',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 30],
    registers,
  });
  new prom.Gauge({
    name: 'events_queue_depth',
    help: 'Events waiting for each subscriber',
    labelNames: ['subscriber'],
    registers,
    collect() {
      this.reset();
      for (const subscriber of catalog.all()) this.set({ subscriber: subscriber.key }, subscriber.depth);
    },
  });
  new prom.Gauge({
    name: 'events_subscribers',
    help: 'Subscribers by kind',
    labelNames: ['kind'],
    registers,
    collect() {
      const counts = { address: 0, instance: 0, group: 0 };
      for (const subscriber of catalog.all()) counts[subscriber.kind]++;
      for (const [kind, count] of Object.entries(counts)) this.set({ kind }, count);
    },
  });
  new prom.Gauge({
    name: 'events_journal_commits',
    help: 'Journal commits (each one fsync) since start',
    registers,
    collect() {
      this.set(journal.stats.commits);
    },
  });
  new prom.Gauge({
    name: 'events_tail_streams',
    help: 'Open live tails (GET /events/stream)',
    registers,
    collect() {
      this.set(tail.size);
    },
  });
  return {
    broker: {
      onPublished: (events) => published.inc(events.length),
      onDropped: (_subscriber, count, reason) => dropped.inc({ reason }, count),
    },
    delivery: {
      onDelivered: (_subscriber, events) => {
        delivered.inc(events.length);
        latency.observe((Date.now() - events[0].time) / 1000);
      },
      onRetry: () => retried.inc(),
      onDropped: (_subscriber, count, reason) => dropped.inc({ reason }, count),
    },
  };
}
