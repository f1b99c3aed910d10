import type { InstanceRecord, RegistryChange } from './registry.ts';
import type { RegistrationStore } from './store.ts';

/** A change to save: one the registry announced, or a lease renewal (no change anyone is told of). */
export type StoreChange = Pick<RegistryChange, 'type' | 'instance' | 'previous'> | { type: 'lease'; instance: InstanceRecord; previous?: undefined };

/**
 * Where the registrations live (REGISTRY_STORE): the file under DATA_DIR for one registry, or etcd for
 * replicas. `sync(id)` is the promise behind a 200: it resolves once that instance's changes so far are saved.
 */
export interface CatalogStore {
  /** What was saved, to restore at start. */
  load(): Promise<InstanceRecord[]>;
  /** Once the loaded records are in the registry: follow what others change (replicas). */
  follow(): Promise<void>;
  changed(change: StoreChange): void;
  sync(instanceId: string): Promise<void>;
  /** Why no client change may be taken now (a replica past its lease), or undefined. */
  refusal?(): string | undefined;
  /** At stop: everything saved that can be. */
  flush(): Promise<void>;
  close(): void;
}

/** The file store (registry/store.ts) behind the common interface; one fsync covers every instance. */
export class FileCatalogStore implements CatalogStore {
  constructor(private readonly store: RegistrationStore) {}

  async load(): Promise<InstanceRecord[]> {
    return this.store.load();
  }

  async follow(): Promise<void> {}

  changed({ type, instance }: StoreChange): void {
    this.store.changed(instance, type === 'deregistered' || type === 'evicted');
  }

  sync(): Promise<void> {
    return this.store.sync();
  }

  flush(): Promise<void> {
    return this.store.flush();
  }

  close(): void {
    this.store.close();
  }
}
