import type { InstanceRecord, Registry } from './registry.ts';

export interface TakeoverActions {
  adopt(record: InstanceRecord): void;
  release(instanceId: string): void;
}

/**
 * What this replica owns, kept in step with the registry, so that when the set of replicas changes it
 * knows what it adopted (checked at once, its subscribers made to re-sync) and what it gave up.
 */
export class Takeover {
  private readonly owned = new Set<string>();

  constructor(
    private readonly registry: Registry,
    private readonly owns: (instanceId: string) => boolean,
    private readonly actions: TakeoverActions,
  ) {
    registry.on('change', ({ type, instance, previous }) => {
      const id = instance.instanceId;
      if (previous && previous.instanceId !== id) this.owned.delete(previous.instanceId);
      if (type === 'deregistered' || type === 'evicted') this.owned.delete(id);
      else if (type === 'registered' || type === 'updated') {
        // Met as it registered: its owner tells it everything anyway, so it is no adoption.
        if (this.owns(id)) this.owned.add(id);
        else this.owned.delete(id);
      }
    });
  }

  get size(): number {
    return this.owned.size;
  }

  /** After the replica set changed: adopts what became ours, releases what did not stay. */
  rebalance(): { adopted: number; released: number } {
    let adopted = 0;
    let released = 0;
    for (const record of this.registry.all()) {
      const id = record.instanceId;
      const mine = this.owns(id);
      if (mine && !this.owned.has(id)) {
        this.owned.add(id);
        this.actions.adopt(record);
        adopted++;
      } else if (!mine && this.owned.delete(id)) {
        this.actions.release(id);
        released++;
      }
    }
    return { adopted, released };
  }
}
