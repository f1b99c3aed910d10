import { EventEmitter } from 'node:events';
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { Logger } from 'winston';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import { EqualJitterBackoff } from '../shared/backoff.ts';

export interface Replica {
  id: string;
  url: string;
  /** The etcd lease its key lives under (hex), so a peer that saw it die removes that key and no newer one. */
  lease: string;
}

/** Rendezvous hashing: the replica with the highest hash of (replica, instance) owns the instance. */
export function rendezvousOwner(replicaIds: Iterable<string>, instanceId: string): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const id of replicaIds) {
    const score = createHash('sha1').update(`${id}\n${instanceId}`).digest().readUInt32BE(0);
    if (score > bestScore || (score === bestScore && id < best!)) [best, bestScore] = [id, score];
  }
  return best;
}

/** How often a replica tries again to announce itself while etcd is away. */
const ANNOUNCE_RETRY_MS = 500;

/**
 * The live registry replicas and who owns what. Each replica puts `<prefix>replicas/<id>` under a short
 * lease (a hung one drops out within it) and watches the others' keys; it also holds a keep-alive
 * connection to each peer, so a crashed one is seen in milliseconds: its socket closes, one probe
 * confirms, and its key is deleted for everyone. Ownership is rendezvous hashing of the instance id over
 * the live replicas: a change of the set moves only the instances of the replica that came or went.
 */
export class ReplicaSet extends EventEmitter<{ changed: [] }> {
  private readonly live = new Map<string, Replica>();
  private readonly links = new Map<string, http.ClientRequest>();
  private readonly owners = new Map<string, string | undefined>();
  private lease?: Lease;
  private leaseId = '';
  private watcher?: Watcher;
  private closed = false;
  private announcing?: Promise<void>;
  /** Until when our lease surely lives: the send time of the last answered keep-alive plus its TTL. */
  private leaseValidUntil = 0;
  /** When this process last woke from a stall longer than its lease (a SIGSTOP, a starved machine). */
  private wokeAt = -Infinity;
  private stallTimer?: NodeJS.Timeout;
  private readonly agent = new http.Agent({ keepAlive: false });

  constructor(
    private readonly client: Etcd3,
    readonly id: string,
    private readonly url: string,
    private readonly ttlSeconds: number,
    private readonly logger: Logger,
    private readonly prefix = '/switchboard/',
  ) {
    super();
  }

  private key(id: string): string {
    return `${this.prefix}replicas/${id}`;
  }

  get members(): Replica[] {
    return [...this.live.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  async start(): Promise<void> {
    this.watchForStalls();
    await this.announce();
    await this.follow();
    this.changed();
  }

  /** Lists the replicas, applies the difference, and watches every change after the listing. */
  private async follow(): Promise<void> {
    const answer = await this.client.getAll().prefix(this.key('')).exec();
    const listed = new Set<string>();
    for (const kv of answer.kvs) {
      listed.add(kv.key.toString().slice(this.key('').length));
      this.put(kv.value.toString());
    }
    for (const id of [...this.live.keys()]) if (!listed.has(id)) this.gone(id);
    const watcher = await this.client.watch().prefix(this.key('')).startRevision(String(Number(answer.header.revision) + 1)).create();
    if (this.closed) return void watcher.cancel().catch(() => undefined);
    this.watcher = watcher;
    watcher.on('put', (kv) => this.put(kv.value.toString()));
    watcher.on('delete', (kv) => this.gone(kv.key.toString().slice(this.key('').length)));
    watcher.on('error', (err) => {
      // Cancelled (its revision compacted away while etcd was out of reach). The client has detached it: it is
      // not cancelled again (see EtcdStore.watchFrom), only replaced.
      if (this.watcher === watcher) this.watcher = undefined;
      this.logger.warn(`the replica watch ended (${err.message}); listing the replicas again`);
      void this.followAgain();
    });
  }

  private async followAgain(): Promise<void> {
    const backoff = new EqualJitterBackoff({ initialMs: ANNOUNCE_RETRY_MS, maxMs: 5000 });
    while (!this.closed) {
      try {
        return await this.follow();
      } catch (err) {
        this.logger.debug(`could not list the replicas: ${(err as Error).message}`);
        await backoff.wait();
      }
    }
  }

  /** The replica that owns an instance: the highest hash of (replica, instance) among the live ones. */
  owner(instanceId: string): string | undefined {
    if (this.owners.has(instanceId)) return this.owners.get(instanceId);
    const best = rendezvousOwner(this.live.keys(), instanceId);
    if (this.owners.size > 100_000) this.owners.clear();
    this.owners.set(instanceId, best);
    return best;
  }

  /** Whether this replica checks the instance and patches it; nothing while it is not in the set itself (a paused one that woke). */
  owns(instanceId: string): boolean {
    return this.live.has(this.id) && this.owner(instanceId) === this.id;
  }

  /**
   * Why this replica must take no client change now, or undefined: past its lease (it woke from a pause, or
   * etcd was away) a peer may have taken its share, and requests it read late may be ones their clients gave up on.
   */
  standing(): string | undefined {
    const now = Date.now();
    // Requests read in the first moments after a wake may have waited in the socket through the stall.
    if (now - this.wokeAt < this.ttlSeconds * 1000) return 'this replica has just woken from a pause longer than its lease';
    if (now < this.leaseValidUntil) return undefined;
    return 'this replica is past its lease in the replica set (paused, or cut off from etcd) and is joining again';
  }

  /** A tick that sees its own lateness: a gap longer than the lease means the process was stalled. */
  private watchForStalls(): void {
    let last = Date.now();
    this.stallTimer = setInterval(() => {
      const now = Date.now();
      if (now - last > this.ttlSeconds * 1000) this.wokeAt = now;
      last = now;
    }, 100);
    this.stallTimer.unref();
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.stallTimer);
    for (const link of this.links.values()) link.destroy();
    this.links.clear();
    await this.watcher?.cancel().catch(() => undefined);
    // Revoking drops our key at once, so the others take over without waiting out the lease.
    await this.lease?.revoke().catch(() => undefined);
    this.agent.destroy();
  }

  /** Puts our key under a fresh lease; again whenever the lease is lost (etcd was away longer than it). */
  private async announce(): Promise<void> {
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
    let granted = false;
    lease.on('lost', (err) => {
      // A grant that failed is the retry loop's to handle; only a lease we held and lost means announcing again.
      if (this.closed || !granted || this.lease !== lease) return;
      this.logger.warn(`lost the replica lease (${err.message}); announcing again`);
      void this.announceUntilDone();
    });
    // Timed from when each keep-alive was sent, so an answer read late (after a pause) extends nothing.
    const sentAt: number[] = [];
    lease.on('keepaliveEstablished', () => (sentAt.length = 0));
    lease.on('keepaliveFired', () => sentAt.push(Date.now()));
    lease.on('keepaliveSucceeded', (res) => {
      const at = sentAt.shift();
      if (at !== undefined && this.lease === lease) this.leaseValidUntil = at + Number(res.TTL) * 1000;
    });
    try {
      const askedAt = Date.now();
      this.leaseId = await lease.grant();
      granted = true;
      this.lease = lease;
      await lease.put(this.key(this.id)).value(JSON.stringify({ id: this.id, url: this.url, lease: this.leaseId }));
      this.leaseValidUntil = Math.max(this.leaseValidUntil, askedAt + this.ttlSeconds * 1000);
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  /** One loop at a time, however many reasons to announce arrive (a lost lease, our key deleted by a peer). */
  private announceUntilDone(): Promise<void> {
    this.announcing ??= (async () => {
      while (!this.closed) {
        try {
          await this.announce();
          return;
        } catch (err) {
          this.logger.debug(`could not announce this replica: ${(err as Error).message}`);
          await new Promise((resolve) => setTimeout(resolve, ANNOUNCE_RETRY_MS));
        }
      }
    })().finally(() => (this.announcing = undefined));
    return this.announcing;
  }

  private put(text: string): void {
    let replica: Replica;
    try {
      replica = JSON.parse(text) as Replica;
    } catch {
      return;
    }
    if (!replica.id || !replica.url) return;
    const known = this.live.get(replica.id);
    this.live.set(replica.id, replica);
    if (replica.id !== this.id && known?.url !== replica.url) this.link(replica);
    if (!known) this.changed();
  }

  private gone(id: string): void {
    if (!this.live.delete(id)) return;
    this.links.get(id)?.destroy();
    this.links.delete(id);
    // A peer thought us dead (we were paused): we are here, so say so again under our lease.
    if (id === this.id && !this.closed) void this.announceUntilDone();
    this.changed();
  }

  private changed(): void {
    this.owners.clear();
    this.logger.info(`replicas: ${this.members.map((r) => (r.id === this.id ? `${r.id} (this one)` : r.id)).join(', ')}`);
    this.emit('changed');
  }

  /** Holds GET /replicas/link open on a peer; when it closes, one probe tells a dead peer from a dropped connection. */
  private link(peer: Replica): void {
    this.links.get(peer.id)?.destroy();
    const req = http.get(`${peer.url}/replicas/link`, { agent: this.agent }, (res) => {
      res.resume();
      res.on('close', () => void this.linkClosed(peer, req));
    });
    req.on('error', () => void this.linkClosed(peer, req));
    this.links.set(peer.id, req);
  }

  private async linkClosed(peer: Replica, req: http.ClientRequest): Promise<void> {
    if (this.closed || this.links.get(peer.id) !== req) return;
    this.links.delete(peer.id);
    const answers = await fetch(`${peer.url}/health`, { signal: AbortSignal.timeout(500) }).then((r) => r.ok, () => false);
    if (this.closed || this.live.get(peer.id) !== peer) return;
    if (answers) {
      setTimeout(() => this.live.get(peer.id) === peer && !this.links.has(peer.id) && this.link(peer), 200).unref();
      return;
    }
    this.logger.warn(`replica ${peer.id} at ${peer.url} is gone; taking over its share`);
    // Only the key under the lease we saw: a replica that restarted under the same id keeps its new one.
    await this.client
      .if(this.key(peer.id), 'Lease', '==', peer.lease)
      .then(this.client.delete().key(this.key(peer.id)))
      .commit()
      .catch((err: Error) => this.logger.warn(`could not remove replica ${peer.id}: ${err.message}`));
  }
}
