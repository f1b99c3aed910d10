import type { Logger } from 'winston';
import type { Outbound } from './outbound.ts';
import type { Patch, PatchEntry } from './protocol.ts';
import { Backoff } from '../shared/backoff.ts';

export interface NotifierOptions {
  timeoutMs: number;
  /** Attempts per patch after the first; then it is dropped and the subscriber sees a gap in seq. */
  retries: number;
  /** Sent as `Authorization: Bearer <token>` so subscribers can tell the registry's patches from anyone's. */
  token?: string;
}

export interface NotifierObserver {
  onSent?(latencyMs: number): void;
  onFailed?(): void;
}

type Op = 'add' | 'remove';

/** One subscriber's ordered queue. Pending changes merge (last one per URL wins) while a send is in flight. */
class SubscriberQueue {
  seq = 0;
  readonly pending = new Map<string, { op: Op; entry: PatchEntry; enqueuedAt: number }>();
  sending = false;
  closed = false;
  constructor(public updateURL: string) {}
}

/**
 * Sends patches to subscribers: one ordered queue each, with timeouts and bounded retries,
 * so a slow or dead subscriber only ever delays itself.
 */
export class Notifier {
  private readonly queues = new Map<string, SubscriberQueue>();
  private readonly headers: Record<string, string>;

  constructor(
    private readonly outbound: Outbound,
    private readonly options: NotifierOptions,
    private readonly logger: Logger,
    private readonly observer: NotifierObserver = {},
  ) {
    this.headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
  }

  /** The seq of the last patch given to this subscriber (0 before the first). */
  lastSeq(subscriberId: string): number {
    return this.queues.get(subscriberId)?.seq ?? 0;
  }

  enqueue(subscriberId: string, updateURL: string, added: PatchEntry[], removed: PatchEntry[]): void {
    if (added.length === 0 && removed.length === 0) return;
    let queue = this.queues.get(subscriberId);
    if (!queue) this.queues.set(subscriberId, (queue = new SubscriberQueue(updateURL)));
    queue.updateURL = updateURL;
    const now = performance.now();
    for (const [op, entries] of [['remove', removed], ['add', added]] as const) {
      for (const entry of entries) {
        const key = `${entry.name}\n${entry.url}`;
        queue.pending.delete(key);
        queue.pending.set(key, { op, entry, enqueuedAt: now });
      }
    }
    if (!queue.sending) void this.drain(queue);
  }

  /** Moves a queue when a restarted instance comes back with a new id. */
  rename(fromId: string, toId: string): void {
    const queue = this.queues.get(fromId);
    if (!queue || fromId === toId) return;
    this.queues.delete(fromId);
    this.queues.set(toId, queue);
  }

  forget(subscriberId: string): void {
    const queue = this.queues.get(subscriberId);
    if (queue) queue.closed = true;
    this.queues.delete(subscriberId);
  }

  get queuedPatches(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.pending.size;
    return count;
  }

  close(): void {
    for (const queue of this.queues.values()) queue.closed = true;
    this.queues.clear();
  }

  private async drain(queue: SubscriberQueue): Promise<void> {
    queue.sending = true;
    try {
      while (queue.pending.size > 0 && !queue.closed) {
        const batch = [...queue.pending.values()];
        queue.pending.clear();
        const patch: Patch = {
          added: batch.filter((c) => c.op === 'add').map((c) => c.entry),
          removed: batch.filter((c) => c.op === 'remove').map((c) => c.entry),
          seq: ++queue.seq,
        };
        const oldest = Math.min(...batch.map((c) => c.enqueuedAt));
        await this.send(queue, patch, oldest);
      }
    } finally {
      queue.sending = false;
    }
  }

  private async send(queue: SubscriberQueue, patch: Patch, enqueuedAt: number): Promise<void> {
    const body = JSON.stringify(patch);
    const backoff = new Backoff({ initialMs: 100, maxMs: 2000 });
    for (let attempt = 0; attempt <= this.options.retries && !queue.closed; attempt++) {
      if (attempt > 0) await backoff.wait();
      if (queue.closed) return;
      const result = await this.outbound.request('POST', queue.updateURL, this.options.timeoutMs, body, false, this.headers);
      if (result.ok) {
        this.observer.onSent?.(performance.now() - enqueuedAt);
        return;
      }
      this.logger.debug(`patch ${patch.seq} to ${queue.updateURL} failed: ${result.message}`);
    }
    this.observer.onFailed?.();
    this.logger.warn(`gave up on patch ${patch.seq} to ${queue.updateURL} after ${this.options.retries + 1} attempts; it will re-sync`);
  }
}
