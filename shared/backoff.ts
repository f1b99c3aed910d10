import { setTimeout as sleep } from 'node:timers/promises';

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
}

/**
 * Exponential backoff with equal jitter: each delay is half its ceiling plus a random share of the other
 * half, so a fleet that lost its registry doesn't come back in step, and no retry comes at once.
 */
export class EqualJitterBackoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions = {}) {}

  nextDelayMs(): number {
    const { initialMs = 100, maxMs = 5000, factor = 2 } = this.options;
    const ceiling = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Waits for the next delay; resolves early (false) when the signal aborts. */
  async wait(signal?: AbortSignal): Promise<boolean> {
    try {
      await sleep(this.nextDelayMs(), undefined, { signal });
      return true;
    } catch {
      return false;
    }
  }
}

/** ±fraction jitter around a period, so timers across a fleet don't beat in step. */
export function jitter(ms: number, fraction = 0.1): number {
  return Math.max(1, Math.round(ms * (1 - fraction + Math.random() * 2 * fraction)));
}
