import { randomUUID } from 'node:crypto';
import type { Logger } from 'winston';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { ChangeType, InstanceRecord, Registry } from './registry.ts';
import type { CatalogStore, StoreChange } from './catalogStore.ts';
import { persisted } from './store.ts';
import { within } from '../shared/timeout.ts';
import { EqualJitterBackoff } from '../shared/backoff.ts';

type Kind = ChangeType | 'lease';
interface Saved {
  /** Which store wrote it: a replica skips the echo of its own writes. */
  by: string;
  kind: Kind;
  record: InstanceRecord;
}
interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}
/** What is still to be written for one instance; changes made meanwhile merge into it. */
interface Slot {
  kind: Kind;
  /** Only a health verdict (up, down, eviction): written only if nobody wrote the key since we read it. */
  conditional: boolean;
  previousId?: string;
  waiters: Waiter[];
}

/** Changes a replica decides on its own; a client's registration, renewal or deregistration is the newest truth. */
const CONDITIONAL = new Set<Kind>(['up', 'down', 'evicted']);
const RETRY_MS = 1000;
/** etcd takes at most 128 operations in a transaction (--max-txn-ops). */
const MAX_BATCH_OPS = 100;
type Op = ReturnType<Etcd3['put']> | ReturnType<Etcd3['delete']>;
type Batch = { keys: Set<string>; ops: Op[]; done: { resolve(revision: string): void; reject(err: Error): void }[] };

/**
 * The registrations in etcd, one key per instance (`<prefix>instances/<id>`), shared by every replica.
 * Each replica keeps the whole catalog in memory from one list at revision R and a watch from R+1,
 * and applies what others write to its Registry (so its announcer tells its subscribers); a lost or
 * compacted watch lists again and applies the difference. `sync(id)` resolves once etcd has committed
 * that instance's changes so far. A health verdict is a transaction that compares the key's revision with
 * the one this replica last saw, so a replica that wakes from a pause can't undo newer state.
 */
export class EtcdStore implements CatalogStore {
  private readonly by = randomUUID();
  private readonly revisions = new Map<string, string>();
  private readonly pending = new Map<string, Slot>();
  private readonly writing = new Map<string, Slot>();
  private readonly failed = new Map<string, Slot>();
  /** Batch commits on their way to etcd (see commitTogether). */
  private committing = 0;
  private watcher?: Watcher;
  private listedAt = 0;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private relisting?: Promise<void>;
  private batch?: Batch;
  /** Whether etcd answered the last call; a reason when it did not. */
  unreachable?: string;
  /** Set by the replica set: why this replica must take no client change now. */
  fence?: () => string | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly registry: Registry,
    private readonly logger: Logger,
    private readonly prefix = '/switchboard/',
  ) {}

  private key(id: string): string {
    return `${this.prefix}instances/${id}`;
  }

  async load(): Promise<InstanceRecord[]> {
    const { saved, revision } = await this.list();
    this.listedAt = revision;
    return saved.map((s) => ({ ...s.record, consecutiveFailures: 0 }));
  }

  /** After the listing is restored: follow every change after it. */
  async follow(): Promise<void> {
    await this.watchFrom(this.listedAt + 1);
  }

  changed(change: StoreChange): void {
    const id = change.instance.instanceId;
    const slot = this.pending.get(id) ?? this.failed.get(id) ?? { kind: change.type, conditional: true, waiters: [] };
    this.failed.delete(id);
    const registration = (kind: Kind) => kind === 'registered' || kind === 'updated';
    if (registration(change.type) || !registration(slot.kind)) slot.kind = change.type;
    slot.conditional &&= CONDITIONAL.has(change.type);
    if (change.previous && change.previous.instanceId !== id) slot.previousId = change.previous.instanceId;
    this.pending.set(id, slot);
    void this.pump(id);
  }

  sync(instanceId: string): Promise<void> {
    const slot = this.pending.get(instanceId) ?? this.writing.get(instanceId);
    if (!slot) return Promise.resolve();
    return new Promise((resolve, reject) => slot.waiters.push({ resolve, reject }));
  }

  refusal(): string | undefined {
    return this.fence?.();
  }

  async flush(): Promise<void> {
    const ids = [...this.pending.keys(), ...this.writing.keys()];
    await within(Promise.allSettled(ids.map((id) => this.sync(id))), 2000);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    void this.watcher?.cancel().catch(() => undefined);
  }

  /** One write at a time per instance; each carries every change to it made while the one before ran. */
  private async pump(id: string): Promise<void> {
    if (this.writing.has(id)) return;
    for (let slot = this.pending.get(id); slot && !this.closed; slot = this.pending.get(id)) {
      this.pending.delete(id);
      this.writing.set(id, slot);
      try {
        await this.write(id, slot);
        this.reachable();
        for (const waiter of slot.waiters) waiter.resolve();
      } catch (err) {
        const reason = (err as Error).message;
        this.lost(reason);
        for (const waiter of slot.waiters) waiter.reject(new Error(`etcd did not commit the change (${reason})`));
        // Memory has the change already: write it again in a while, so etcd catches up when it is back.
        this.failed.set(id, { ...slot, waiters: [] });
        this.retryTimer ??= setTimeout(() => this.retryFailed(), RETRY_MS);
      } finally {
        this.writing.delete(id);
      }
    }
  }

  private retryFailed(): void {
    this.retryTimer = undefined;
    for (const [id, slot] of this.failed) {
      this.failed.delete(id);
      if (!this.pending.has(id)) this.pending.set(id, slot);
      void this.pump(id);
    }
  }

  /** Writes what memory holds now (a delete when it holds nothing), in one transaction with the old key of a renamed instance. */
  private async write(id: string, slot: Slot): Promise<void> {
    const record = this.registry.get(id);
    const renamed = slot.previousId !== undefined && !this.registry.get(slot.previousId) ? this.key(slot.previousId) : undefined;
    const keys = renamed ? [this.key(id), renamed] : [this.key(id)];
    const ops: Op[] = renamed ? [this.client.delete().key(renamed)] : [];
    if (record) ops.push(this.client.put(this.key(id)).value(`{"by":${JSON.stringify(this.by)},"kind":"${slot.kind}","record":${persisted(record)}}`));
    else ops.push(this.client.delete().key(this.key(id)));
    const base = this.revisions.get(id) ?? '0';
    const answer = slot.conditional
      ? await this.client.if(this.key(id), 'Mod', '==', base).then(...ops).commit()
      : { succeeded: true, header: { revision: await this.commitTogether(keys, ops) } };
    if (!answer.succeeded) {
      // Someone wrote it since we read it: theirs is newer, and the watch brings it here.
      this.logger.info(`not saving ${slot.kind} of ${id}: another replica changed it after revision ${base}`);
      return;
    }
    if (record) this.revisions.set(id, answer.header.revision);
    else this.revisions.delete(id);
  }

  /**
   * Group commit: the unconditional writes that arrive while a batch is on its way to etcd (one per instance at a
   * time) go as the next transaction once it is answered, as the file store covers them with one fsync; a write
   * that finds nothing on its way goes at once, so an idle replica adds no wait to a registration (nor to the
   * patches the other replicas send once its watch brings it). Resolves with the revision that committed them.
   */
  private commitTogether(keys: string[], ops: Op[]): Promise<string> {
    // A key may appear once in a transaction: one already in this batch starts the next.
    if (this.batch && (keys.some((key) => this.batch!.keys.has(key)) || this.batch.ops.length + ops.length > MAX_BATCH_OPS)) this.commitBatch();
    const batch = (this.batch ??= { keys: new Set(), ops: [], done: [] });
    for (const key of keys) batch.keys.add(key);
    batch.ops.push(...ops);
    const committed = new Promise<string>((resolve, reject) => batch.done.push({ resolve, reject }));
    if (this.committing === 0) this.commitBatch();
    return committed;
  }

  private commitBatch(): void {
    const batch = this.batch;
    this.batch = undefined;
    if (!batch?.ops.length) return;
    const [first] = batch.keys;
    this.committing++;
    this.client
      .if(first, 'Mod', '>', -1)
      .then(...batch.ops)
      .commit()
      .then(
        (answer) => batch.done.forEach((d) => d.resolve(answer.header.revision)),
        (err: Error) => batch.done.forEach((d) => d.reject(err)),
      )
      .finally(() => {
        // The calls have a deadline (replication.ts), so a batch waiting here is not held for ever.
        if (--this.committing === 0 && this.batch) this.commitBatch();
      });
  }

  private async list(): Promise<{ saved: Saved[]; revision: number }> {
    const answer = await this.client.getAll().prefix(this.key('')).exec();
    const saved: Saved[] = [];
    for (const kv of answer.kvs) {
      const value = this.parse(kv);
      if (!value) continue;
      this.revisions.set(value.record.instanceId, kv.mod_revision);
      saved.push(value);
    }
    return { saved, revision: Number(answer.header.revision) };
  }

  private parse(kv: IKeyValue): Saved | undefined {
    try {
      const value = JSON.parse(kv.value.toString()) as Saved;
      if (value?.record?.instanceId && value.record.serviceURL) return value;
    } catch {
      // not ours: skipped below
    }
    this.logger.error(`skipping an unreadable value at ${kv.key.toString()}`);
    return undefined;
  }

  private async watchFrom(revision: number): Promise<void> {
    const watcher = await this.client.watch().prefix(this.key('')).startRevision(String(revision)).create();
    if (this.closed) return void watcher.cancel().catch(() => undefined);
    this.watcher = watcher;
    watcher.on('data', (res) => this.onEvents(res.events));
    watcher.on('connected', () => this.reachable());
    watcher.on('disconnected', (err) => this.lost(`watch disconnected: ${err.message}`));
    watcher.on('error', (err) => {
      // Cancelled, most often because the revision it would resume from was compacted away. The client has
      // detached it already: cancelling it again would make etcd answer for a watch id the client no longer
      // knows, and etcd3 throws on that answer outside any promise, which ends the process.
      if (this.watcher === watcher) this.watcher = undefined;
      this.logger.warn(`the etcd watch ended (${err.message}); listing the registrations again`);
      void this.relist();
    });
  }

  private onEvents(events: { type: string; kv: IKeyValue }[]): void {
    const parsed = events.map((event) => ({ event, value: event.type === 'Put' ? this.parse(event.kv) : undefined }));
    // A rename is one transaction (delete the old key, put the new): the put moves the instance, the delete must not remove it.
    const movedUrls = new Set(parsed.flatMap(({ value }) => (value ? [value.record.serviceURL] : [])));
    for (const { event, value } of parsed) {
      const id = event.kv.key.toString().slice(this.key('').length);
      if (event.type === 'Delete') {
        this.revisions.delete(id);
        const held = this.registry.get(id);
        if (held && !movedUrls.has(held.serviceURL) && !this.pending.has(id)) this.registry.remove(id, 'deregistered', true);
        continue;
      }
      if (!value) continue;
      this.revisions.set(id, event.kv.mod_revision);
      if (value.by !== this.by) this.registry.applyRemote(value.record, value.kind);
    }
  }

  /** Lists again (until etcd answers), applies the difference to memory, and watches from there. */
  private relist(): Promise<void> {
    this.relisting ??= (async () => {
      const backoff = new EqualJitterBackoff({ initialMs: 200, maxMs: 5000 });
      while (!this.closed) {
        try {
          const { saved, revision } = await this.list();
          this.applyListing(saved);
          await this.watchFrom(revision + 1);
          this.reachable();
          return;
        } catch (err) {
          this.lost((err as Error).message);
          await backoff.wait();
        }
      }
    })().finally(() => (this.relisting = undefined));
    return this.relisting;
  }

  private applyListing(saved: Saved[]): void {
    const listed = new Set<string>();
    for (const { kind, record } of saved) {
      listed.add(record.instanceId);
      const held = this.registry.get(record.instanceId);
      if (held && persisted(held) === persisted(record)) continue;
      this.registry.applyRemote(record, held ? kind : 'registered');
    }
    for (const record of [...this.registry.all()]) {
      const id = record.instanceId;
      if (!listed.has(id) && !this.pending.has(id) && !this.writing.has(id) && !this.failed.has(id)) this.registry.remove(id, 'deregistered', true);
    }
  }

  private reachable(): void {
    if (this.unreachable !== undefined) this.logger.info('etcd answers again');
    this.unreachable = undefined;
  }

  private lost(reason: string): void {
    if (this.unreachable === undefined) this.logger.warn(`etcd is unreachable (${reason}); reads answer from memory, changes answer 503`);
    this.unreachable = reason;
  }
}
