import type { Notifier } from './notifier.ts';
import type { InstanceRecord, Registry, RegistryChange } from './registry.ts';
import type { PatchEntry } from './protocol.ts';
import { within } from '../shared/timeout.ts';

/** What the announcer asks of the notifier (a recording fake in the tests). */
export type PatchQueues = Pick<Notifier, 'enqueue' | 'delivered' | 'lastSeq' | 'pause' | 'resume' | 'rename' | 'forget'>;
type AnnouncerOptions = {
  notifyTimeoutMs: number;
  /** Whether this replica patches the subscriber (replicas split them); every one when unset. */
  owns?: (instanceId: string) => boolean;
};

/**
 * Who is told what. It follows the registry's changes and holds the patch rules:
 * - the dependents of a service hear of each of its instances that is offered (registered, updated,
 *   up) or withdrawn (down, deregistered, evicted), and of the old entry when one changes name or URL;
 * - an instance that is offered learns every live provider it needs: a new registration gets this
 *   first patch even when it is empty, as the reference registry sends it, and before its answer;
 * - an instance that is down is sent nothing until it is up again (its patches wait, merged);
 * - a restarted instance that brings a new id keeps its queue, and so its seq;
 * - with replicas, only the subscriber's owner patches it; an adopted one is made to re-sync (adopt()).
 */
export class Announcer {
  constructor(
    private readonly registry: Registry,
    private readonly queues: PatchQueues,
    private readonly options: AnnouncerOptions,
  ) {
    registry.on('change', (change) => this.announce(change));
  }

  /**
   * The seq a registration's answer carries: that of its first patch, once the instance has
   * acknowledged it, waiting no longer than the notify timeout (then the last seq given to it).
   */
  async answerSeq(record: InstanceRecord): Promise<number> {
    const id = record.instanceId;
    if (!record.serviceUpdateURL) return this.queues.lastSeq(id);
    const seq = await within(this.queues.delivered(id), this.options.notifyTimeoutMs);
    return seq ?? this.queues.lastSeq(id);
  }

  /**
   * This replica took the subscriber over: a patch with seq 0 (which the re-sync rule always takes for
   * a gap) carries every live provider it needs, and its next patches count on from there.
   */
  adopt(record: InstanceRecord): void {
    if (!record.serviceUpdateURL || record.state !== 'up') return;
    this.queues.forget(record.instanceId);
    const added = record.requiredServices.flatMap((name) => this.registry.providers(name).map((url) => ({ name, url })));
    this.queues.enqueue(record.instanceId, record.serviceUpdateURL, added, [], true, -1);
  }

  private announce({ type, instance, previous }: RegistryChange): void {
    const id = instance.instanceId;
    // Another replica's subscriber is that replica's to patch; the dependents here still hear of it.
    const mine = !this.options.owns || this.options.owns(id);
    // The queue moves with the id before anything is queued under the new one.
    if (previous && previous.instanceId !== id) this.queues.rename(previous.instanceId, id);
    if (mine && type === 'down' && instance.serviceUpdateURL) this.queues.pause(id);
    this.tellDependents(type, instance, previous);
    const offered = instance.state === 'up' && (type === 'registered' || type === 'updated' || type === 'up');
    if (mine && offered && instance.serviceUpdateURL) {
      // Also after being down: it may have missed patches (those that waited go with this one).
      const added = instance.requiredServices.flatMap((name) => this.registry.providers(name).map((url) => ({ name, url })));
      this.queues.enqueue(id, instance.serviceUpdateURL, added, [], type !== 'up');
      this.queues.resume(id);
    }
    if (type === 'deregistered' || type === 'evicted') this.queues.forget(id);
  }

  private tellDependents(type: RegistryChange['type'], instance: InstanceRecord, previous: RegistryChange['previous']): void {
    if (previous && (previous.serviceName !== instance.serviceName || previous.serviceURL !== instance.serviceURL)) {
      const old = { name: previous.serviceName, url: previous.serviceURL };
      for (const dependent of this.registry.dependentsOf(old.name)) this.patch(dependent, [], [old]);
    }
    const entry = { name: instance.serviceName, url: instance.serviceURL };
    const offered = instance.state === 'up' && (type === 'registered' || type === 'updated' || type === 'up');
    for (const dependent of this.registry.dependentsOf(instance.serviceName)) {
      if (dependent === instance) continue;
      if (offered) this.patch(dependent, [entry], []);
      else this.patch(dependent, [], [entry]);
    }
  }

  private patch(subscriber: InstanceRecord, added: PatchEntry[], removed: PatchEntry[]): void {
    if (this.options.owns && !this.options.owns(subscriber.instanceId)) return;
    if (subscriber.serviceUpdateURL) this.queues.enqueue(subscriber.instanceId, subscriber.serviceUpdateURL, added, removed);
  }
}
