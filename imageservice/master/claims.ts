/**
 * Long-polled claims: a worker that finds nothing pending waits here (in memory, no sleeping, no
 * polling of its own) until a task becomes pending, its wait runs out, or it hangs up. Waiters are
 * served first come, first served. Claims are asynchronous (the store may be a database away), so
 * one serving loop runs at a time and a wake during it makes it go round once more.
 */
import type { ClaimedTask } from '../protocol.ts';

interface Waiter {
  workerId: string;
  since: number;
  resolve: (task: ClaimedTask | undefined) => void;
  timer: NodeJS.Timeout;
}

export interface ClaimQueueHooks {
  /** A task leased for a waiter that left meanwhile: give it back. */
  giveBack: (task: ClaimedTask) => Promise<unknown>;
  onWaited?: (seconds: number, got: boolean) => void;
  /** A claim for a waiter failed (the store is away): the waiters stay, the next wake tries again. */
  onError?: (err: unknown) => void;
}

export class ClaimQueue {
  private readonly waiters: Waiter[] = [];
  private serving = false;
  private wokenWhileServing = false;

  constructor(
    private readonly tryClaim: (workerId: string) => Promise<ClaimedTask | undefined>,
    private readonly hooks: ClaimQueueHooks,
  ) {}

  get waiting(): number {
    return this.waiters.length;
  }

  /** A task now, or the first one that turns up within waitMs; undefined when none does or the caller leaves. */
  async claim(workerId: string, waitMs: number, signal: AbortSignal): Promise<ClaimedTask | undefined> {
    // Someone who waited longer gets a new task first: only claim directly when nobody is queued.
    const task = this.waiters.length === 0 ? await this.tryClaim(workerId) : undefined;
    if (task || waitMs === 0 || signal.aborted) {
      this.hooks.onWaited?.(0, Boolean(task));
      return task;
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        workerId,
        since: performance.now(),
        resolve,
        timer: setTimeout(() => this.leave(waiter, undefined), waitMs),
      };
      signal.addEventListener('abort', () => this.leave(waiter, undefined), { once: true });
      this.waiters.push(waiter);
      // Work may be pending already (it arrived while others were queued, or during our own claim).
      this.wake();
    });
  }

  /** Hands pending tasks to waiters, oldest waiter first, until none is left or no task is. */
  wake(): void {
    if (this.serving) {
      this.wokenWhileServing = true;
      return;
    }
    if (this.waiters.length === 0) return;
    this.serving = true;
    void this.serve().finally(() => {
      this.serving = false;
    });
  }

  private async serve(): Promise<void> {
    do {
      this.wokenWhileServing = false;
      while (this.waiters.length > 0) {
        const waiter = this.waiters[0];
        let task: ClaimedTask | undefined;
        try {
          task = await this.tryClaim(waiter.workerId);
        } catch (err) {
          this.hooks.onError?.(err);
          return;
        }
        if (!task) break;
        if (!this.leave(waiter, task)) await this.hooks.giveBack(task).catch((err) => this.hooks.onError?.(err));
      }
    } while (this.wokenWhileServing && this.waiters.length > 0);
  }

  /** Answers every waiter with nothing (shutdown). */
  drain(): void {
    for (const waiter of [...this.waiters]) this.leave(waiter, undefined);
  }

  /** False when the waiter had already gone (its wait ran out, or it hung up). */
  private leave(waiter: Waiter, task: ClaimedTask | undefined): boolean {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return false;
    this.waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    this.hooks.onWaited?.((performance.now() - waiter.since) / 1000, Boolean(task));
    waiter.resolve(task);
    return true;
  }
}
