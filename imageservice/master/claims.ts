/**
 * Long-polled claims: a worker that finds nothing pending waits here (in memory, no sleeping,
 * no polling) until a task becomes pending, its wait runs out, or it hangs up. Waiters are served
 * first come, first served.
 */
import type { ClaimedTask } from '../protocol.ts';

interface Waiter {
  workerId: string;
  since: number;
  resolve: (task: ClaimedTask | undefined) => void;
  timer: NodeJS.Timeout;
}

export class ClaimQueue {
  private readonly waiters: Waiter[] = [];

  constructor(
    private readonly tryClaim: (workerId: string) => ClaimedTask | undefined,
    private readonly onWaited: (seconds: number, got: boolean) => void = () => {},
  ) {}

  get waiting(): number {
    return this.waiters.length;
  }

  /** A task now, or the first one that turns up within waitMs; undefined when none does or the caller leaves. */
  claim(workerId: string, waitMs: number, signal: AbortSignal): Promise<ClaimedTask | undefined> {
    // Someone who waited longer gets a new task first: only claim directly when nobody is queued.
    const task = this.waiters.length === 0 ? this.tryClaim(workerId) : undefined;
    if (task || waitMs === 0 || signal.aborted) {
      this.onWaited(0, Boolean(task));
      return Promise.resolve(task);
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
      // Work may be pending already (it arrived while others were queued).
      this.wake();
    });
  }

  /** Hands pending tasks to waiters, oldest waiter first, until one of them runs out. */
  wake(): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0];
      const task = this.tryClaim(waiter.workerId);
      if (!task) return;
      this.leave(waiter, task);
    }
  }

  /** Answers every waiter with nothing (shutdown). */
  drain(): void {
    for (const waiter of [...this.waiters]) this.leave(waiter, undefined);
  }

  private leave(waiter: Waiter, task: ClaimedTask | undefined): void {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return;
    this.waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    this.onWaited((performance.now() - waiter.since) / 1000, Boolean(task));
    waiter.resolve(task);
  }
}
