import type { Logger } from 'winston';
import type { Outbound } from './outbound.ts';
import type { Patch, PatchEntry } from './protocol.ts';
import { EqualJitterBackoff } from '../shared/backoff.ts';

export interface NotifierOptions {
  timeoutMs: number;
  /** Attempts after the first before a patch is reported as stuck; it is still retried while the subscriber is up. */
  retries: number;
  /** Sent as `Authorization: Bearer <token>` so subscribers can tell the registry's patches from anyone's. */
  token?: string;
}

export interface NotifierObserver {
  onSent?(latencyMs: number): void;
  /** A patch was not through after `retries` more attempts (it is still being retried). */
  onFailed?(): void;
}

type Op = 'add' | 'remove';
type Change = { op: Op; entry: PatchEntry; enqueuedAt: number };
type Delivered = (seq: number | undefined) => void;

const keyOf = (entry: PatchEntry) => `${entry.name}\n${entry.url}`;

/** One subscriber's ordered queue. Pending changes merge (last one per URL wins) while a send is in flight. */
class SubscriberQueue {
  seq = 0;
  /** The seq of a patch that was never acknowledged: the next patch carries its changes, under the same number. */
  unacknowledgedSeq?: number;
  pending = new Map<string, Change>();
  /** Callers waiting for what is pending, then for what is in flight: told the seq of the patch that carried it. */
  waitingForPending: Delivered[] = [];
  waitingForInFlight: Delivered[] = [];
  /** Send a patch even with no change in it: an instance's first patch, as the reference registry sends it. */
  forced = false;
  sending = false;
  /** The subscriber is down: its changes wait (merged) until it is up again, rather than being sent to nobody. */
  paused = false;
  closed = false;
  /** Made only when a retry has to wait (most patches never do): an abort controller per subscriber costs. */
  private controller?: AbortController;
  private stopped = false;
  constructor(public updateURL: string) {}

  /** The signal a retry's wait listens to: aborted by stopWaits(), until renewWaits(). */
  waitSignal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort();
    }
    return this.controller.signal;
  }

  stopWaits(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  renewWaits(): void {
    this.stopped = false;
    this.controller = undefined;
  }
}

/**
 * Sends patches to subscribers: one ordered queue each, with timeouts and retries, so a slow or dead
 * subscriber only ever delays itself. A subscriber that is up is never given up on (clients that
 * ignore seq could not re-sync): what queues up meanwhile merges into the patch being retried.
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
    return Math.max(0, this.queues.get(subscriberId)?.seq ?? 0);
  }

  /**
   * Queues changes for a subscriber; `always` sends a patch even when both lists are empty. `startSeq`
   * numbers a new queue's patches from one past it (-1: the first is seq 0, which makes the subscriber re-sync).
   */
  enqueue(subscriberId: string, updateURL: string, added: PatchEntry[], removed: PatchEntry[], always = false, startSeq?: number): void {
    if (added.length === 0 && removed.length === 0 && !always) return;
    const fresh = !this.queues.has(subscriberId);
    const queue = this.queue(subscriberId, updateURL);
    if (fresh && startSeq !== undefined) queue.seq = startSeq;
    queue.updateURL = updateURL;
    queue.forced ||= always;
    const now = performance.now();
    for (const [op, entries] of [['remove', removed], ['add', added]] as const) {
      for (const entry of entries) {
        const key = keyOf(entry);
        queue.pending.delete(key);
        queue.pending.set(key, { op, entry, enqueuedAt: now });
      }
    }
    if (!queue.sending && !queue.paused) void this.drain(queue);
  }

  /**
   * Resolves with the seq of the patch that carries what is queued for this subscriber now, once the
   * subscriber has acknowledged it; with undefined when nothing is queued, or it pauses or leaves first.
   */
  delivered(subscriberId: string): Promise<number | undefined> {
    const queue = this.queues.get(subscriberId);
    if (!queue || queue.paused) return Promise.resolve(undefined);
    if (queue.pending.size > 0 || queue.forced) return new Promise((resolve) => queue.waitingForPending.push(resolve));
    if (queue.sending) return new Promise((resolve) => queue.waitingForInFlight.push(resolve));
    return Promise.resolve(undefined);
  }

  /** The subscriber is down: hold its patches. */
  pause(subscriberId: string): void {
    const queue = this.queue(subscriberId, '');
    if (queue.paused) return;
    queue.paused = true;
    queue.stopWaits();
    this.release(queue);
  }

  /** The subscriber is up again: send what waited. */
  resume(subscriberId: string): void {
    const queue = this.queues.get(subscriberId);
    if (!queue?.paused) return;
    queue.paused = false;
    queue.renewWaits();
    if (!queue.sending && queue.updateURL && (queue.pending.size > 0 || queue.forced)) void this.drain(queue);
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
    if (queue) this.closeQueue(queue);
    this.queues.delete(subscriberId);
  }

  get queuedPatches(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.pending.size;
    return count;
  }

  close(): void {
    for (const queue of this.queues.values()) this.closeQueue(queue);
    this.queues.clear();
  }

  private queue(subscriberId: string, updateURL: string): SubscriberQueue {
    let queue = this.queues.get(subscriberId);
    if (!queue) this.queues.set(subscriberId, (queue = new SubscriberQueue(updateURL)));
    return queue;
  }

  private closeQueue(queue: SubscriberQueue): void {
    queue.closed = true;
    queue.stopWaits();
    this.release(queue);
  }

  /** Nobody waits on a queue that won't send: its waiters hear undefined. */
  private release(queue: SubscriberQueue): void {
    for (const resolve of [...queue.waitingForPending, ...queue.waitingForInFlight]) resolve(undefined);
    queue.waitingForPending = [];
    queue.waitingForInFlight = [];
  }

  private async drain(queue: SubscriberQueue): Promise<void> {
    queue.sending = true;
    try {
      while ((queue.pending.size > 0 || queue.forced) && !queue.closed && !queue.paused) {
        const batch = queue.pending;
        queue.pending = new Map();
        queue.forced = false;
        queue.waitingForInFlight = queue.waitingForPending;
        queue.waitingForPending = [];
        const seq = queue.unacknowledgedSeq ?? ++queue.seq;
        queue.unacknowledgedSeq = seq;
        if (await this.send(queue, batch, seq)) {
          queue.unacknowledgedSeq = undefined;
          for (const resolve of queue.waitingForInFlight) resolve(seq);
          queue.waitingForInFlight = [];
        } else {
          // Paused or closed before it got through: its changes wait, under any newer ones, for the subscriber's return.
          for (const [key, change] of queue.pending) {
            batch.delete(key);
            batch.set(key, change);
          }
          queue.pending = batch;
        }
      }
    } finally {
      queue.sending = false;
    }
  }

  /** Sends the batch until the subscriber acknowledges it (true), or pauses or leaves (false). */
  private async send(queue: SubscriberQueue, batch: Map<string, Change>, seq: number): Promise<boolean> {
    let backoff: EqualJitterBackoff | undefined;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 && !(await (backoff ??= new EqualJitterBackoff({ initialMs: 100, maxMs: 5000 })).wait(queue.waitSignal()))) return false;
      if (queue.closed || queue.paused) return false;
      // What queued up while we waited joins this patch, newest state winning.
      for (const [key, change] of queue.pending) {
        batch.delete(key);
        batch.set(key, change);
      }
      queue.pending.clear();
      queue.waitingForInFlight.push(...queue.waitingForPending);
      queue.waitingForPending = [];
      const changes = [...batch.values()];
      const patch: Patch = {
        added: changes.filter((c) => c.op === 'add').map((c) => c.entry),
        removed: changes.filter((c) => c.op === 'remove').map((c) => c.entry),
        seq,
      };
      const result = await this.outbound.request('POST', queue.updateURL, this.options.timeoutMs, JSON.stringify(patch), false, this.headers);
      if (result.ok) {
        this.observer.onSent?.(performance.now() - Math.min(...changes.map((c) => c.enqueuedAt), performance.now()));
        return true;
      }
      this.logger.debug(`patch ${seq} to ${queue.updateURL} failed: ${result.message}`);
      if (attempt === this.options.retries) {
        this.observer.onFailed?.();
        this.logger.warn(`patch ${seq} to ${queue.updateURL} is not through after ${attempt + 1} attempts (${result.message}); retrying while the instance is up`);
      }
    }
  }
}
