/**
 * Keeps the subscriptions of registered services in step with the registry by following its
 * stream (GET /services/stream): a snapshot, then every change. An instance that goes down stops
 * receiving, one that comes back resumes, one that leaves is forgotten. A lost stream is followed
 * again with backoff, and its new snapshot catches up on whatever happened meanwhile.
 */
import type { Logger } from 'winston';
import { EqualJitterBackoff } from '../shared/backoff.ts';
import type { RegistryClient } from '../registry/client.ts';
import type { InstanceView, RegistryEvent } from '../registry/protocol.ts';
import type { SubscriberCatalog } from './catalog.ts';

export class RegistryFollower {
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  /** Snapshots applied (for tests and the log). */
  snapshots = 0;

  constructor(
    private readonly registry: RegistryClient,
    private readonly catalog: SubscriberCatalog,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.running ??= this.follow();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async follow(): Promise<void> {
    const backoff = new EqualJitterBackoff({ initialMs: 200, maxMs: 5000 });
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        await this.registry.watch((event) => this.applySafely(event, backoff), this.abort.signal);
        if (!this.abort.signal.aborted) this.logger.warn('the registry ended its stream; following it again');
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 20 === 0) this.logger.warn(`cannot follow the registry (${(err as Error).message}); retrying with backoff`);
      }
      if (!(await backoff.wait(this.abort.signal))) return;
    }
  }

  /** A change we fail to apply is logged; the stream (and the next changes) go on. */
  private applySafely(event: RegistryEvent, backoff: EqualJitterBackoff): void {
    try {
      this.apply(event, backoff);
    } catch (err) {
      this.logger.error(`could not apply the registry's ${event.type} event: ${(err as Error).message}`);
    }
  }

  private apply(event: RegistryEvent, backoff: EqualJitterBackoff): void {
    switch (event.type) {
      case 'snapshot':
        backoff.reset();
        this.snapshots++;
        this.catalog.reconcile(event.instances.map(registered));
        return;
      case 'registered':
      case 'updated':
      case 'up':
      case 'down':
        this.catalog.syncInstance(registered(event.instance));
        return;
      case 'deregistered':
      case 'evicted':
        this.catalog.removeInstance(event.instance.serviceName, event.instance.serviceURL);
        return;
      default:
        return; // 'checked': routine health checks, no news for subscriptions
    }
  }
}

function registered(view: InstanceView) {
  return { serviceName: view.serviceName, serviceURL: view.serviceURL, state: view.state, metadata: view.metadata };
}
