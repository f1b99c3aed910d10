import { randomUUID } from 'node:crypto';
import type { Logger } from 'winston';
import { Etcd3, isRecoverableError } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';
import { EtcdStore } from './etcdStore.ts';
import { ReplicaSet } from './replicaSet.ts';
import { Takeover, type TakeoverActions } from './takeover.ts';
import type { Registry } from './registry.ts';
import type { RegistryOptions } from './config.ts';

/**
 * The replica mode (REGISTRY_STORE=etcd): the etcd client and store, this replica's place in the
 * replica set, and who owns which instance. The server asks it what it owns and hands it takeovers;
 * with the file store there is none of this, and one registry owns everything.
 */
export class Replication {
  readonly store: EtcdStore;
  private readonly etcd: Etcd3;
  private replicas?: ReplicaSet;
  private takeover?: Takeover;

  constructor(
    private readonly options: RegistryOptions,
    private readonly registry: Registry,
    private readonly logger: Logger,
  ) {
    // A call etcd doesn't answer within 2 s fails, so a write answers 503 instead of hanging. The client's
    // defaults keep a failed host shut for 5 s at a time and let a lost watch wait up to 30 s to reconnect:
    // a registry that must recover by itself tries again within a second.
    this.etcd = new Etcd3({
      hosts: options.etcdEndpoints,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }),
      faultHandling: {
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        // The client takes a first backoff and asks it for the next delay each time (as with its default).
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
      },
    });
    this.store = new EtcdStore(this.etcd, registry, logger);
  }

  /** Whether this replica checks and patches the instance; nothing is owned until it is in the set. */
  readonly owns = (instanceId: string): boolean => this.replicas?.owns(instanceId) ?? false;

  /** What to do with instances this replica adopts from others, or hands over to them. */
  onTakeover(actions: TakeoverActions): void {
    this.takeover = new Takeover(this.registry, this.owns, actions);
  }

  /** Joins the replica set under `url` (once it is listening) and rebalances whenever the set changes. */
  async join(url: string): Promise<void> {
    this.replicas = new ReplicaSet(this.etcd, this.options.replicaId ?? randomUUID().slice(0, 8), url, this.options.replicaLeaseSeconds, this.logger);
    this.store.fence = () => this.replicas?.standing();
    this.replicas.on('changed', () => {
      if (!this.takeover) return;
      const { adopted, released } = this.takeover.rebalance();
      if (adopted || released) this.logger.info(`took over ${adopted} instance(s), handed over ${released}`);
    });
    await this.replicas.start();
  }

  /** Out of the set first, so the others take over at once. */
  async leave(): Promise<void> {
    await this.replicas?.stop();
  }

  close(): void {
    this.etcd.close();
  }

  /** The replica that owns an instance (read-only, for the dashboard's replicas view). */
  ownerOf(instanceId: string): string | undefined {
    return this.replicas?.owner(instanceId);
  }

  /** The live replicas with what each owns, and whether etcd answers. */
  health(): Record<string, unknown> {
    const owned = new Map<string, number>();
    for (const record of this.registry.all()) {
      const owner = this.replicas?.owner(record.instanceId) ?? '';
      owned.set(owner, (owned.get(owner) ?? 0) + 1);
    }
    return {
      store: 'etcd',
      etcd: this.store.unreachable === undefined ? { status: 'ok' } : { status: 'unreachable', reason: this.store.unreachable },
      replica: this.replicas?.id,
      replicas: (this.replicas?.members ?? []).map((r) => ({ id: r.id, url: r.url, owns: owned.get(r.id) ?? 0 })),
    };
  }
}
