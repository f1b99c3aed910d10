/**
 * Returns tasks whose lease lapsed: one timer armed for the earliest lease expiry (re-armed
 * whenever leases change), never a sleep in a request and never a busy loop.
 */
export class LeaseReaper {
  private timer?: NodeJS.Timeout;
  private armedFor = Infinity;
  private stopped = false;

  constructor(
    private readonly nextExpiry: () => number | undefined,
    private readonly expire: () => void,
  ) {}

  /** Arms the timer for the next expiry; call after anything that may have moved it. */
  schedule(): void {
    if (this.stopped) return;
    const at = this.nextExpiry();
    if (at === undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.armedFor = Infinity;
      return;
    }
    if (this.timer && at >= this.armedFor) return;
    clearTimeout(this.timer);
    this.armedFor = at;
    // A few ms late rather than early: the expiry test is "lease_expires_at <= now".
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now() + 5));
    this.timer.unref();
  }

  /** A lease may only move later (renewal) without re-arming: the timer fires, finds nothing, and re-arms. */
  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    try {
      this.expire();
    } finally {
      this.schedule();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
