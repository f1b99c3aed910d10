/**
 * Follows the registry's stream (GET /services/stream) into a view of its instances: a snapshot, then
 * every change as it happens, so whoever keeps the view never polls. A lost stream is followed again with
 * backoff, and its new snapshot catches up on whatever happened meanwhile. The events service keeps its
 * subscriptions in step this way; the launcher sees its services register.
 */
import { EqualJitterBackoff } from '../shared/backoff.ts';
import type { RegistryClient } from './client.ts';
import type { InstanceView, RegistryEvent } from './protocol.ts';

/** Where the followed changes go. */
export interface FollowerSink {
  /** The registry's whole list, at the start of each stream: instances it no longer has are gone. */
  reconcile(instances: InstanceView[]): void;
  /** An instance registered, updated, or gone up or down. */
  sync(instance: InstanceView): void;
  /** An instance deregistered or evicted. */
  remove(instance: InstanceView): void;
}

/** What the follower says when it can't follow, or a change can't be applied. */
export interface FollowerLog {
  warn(message: string): void;
  error(message: string): void;
}

export class RegistryFollower {
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  /** Snapshots applied (for tests and the log). */
  snapshots = 0;

  constructor(
    private readonly registry: RegistryClient,
    private readonly sink: FollowerSink,
    private readonly log: FollowerLog,
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
        if (!this.abort.signal.aborted) this.log.warn('the registry ended its stream; following it again');
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 20 === 0) this.log.warn(`cannot follow the registry (${(err as Error).message}); retrying with backoff`);
      }
      if (!(await backoff.wait(this.abort.signal))) return;
    }
  }

  /** A change we fail to apply is logged; the stream (and the next changes) go on. */
  private applySafely(event: RegistryEvent, backoff: EqualJitterBackoff): void {
    try {
      this.apply(event, backoff);
    } catch (err) {
      this.log.error(`could not apply the registry's ${event.type} event: ${(err as Error).message}`);
    }
  }

  private apply(event: RegistryEvent, backoff: EqualJitterBackoff): void {
    switch (event.type) {
      case 'snapshot':
        backoff.reset();
        this.snapshots++;
        this.sink.reconcile(event.instances);
        return;
      case 'registered':
      case 'updated':
      case 'up':
      case 'down':
        this.sink.sync(event.instance);
        return;
      case 'deregistered':
      case 'evicted':
        this.sink.remove(event.instance);
        return;
      default:
        return; // 'checked': routine health checks, no news about the list
    }
  }
}
