/**
 * Returns tasks whose lease lapsed: one timer armed for the earliest lease expiry, never a sleep in
 * a request and never a busy loop. The store may be a database away, so a lookup is asynchronous and
 * the timer only ever moves earlier; one that fires for nothing re-reads the next expiry.
 */
export class LeaseReaper {
  private timer?: NodeJS.Timeout;
  private armedFor = Infinity;
  private stopped = false;

  constructor(
    private readonly nextExpiry: () => Promise<number | undefined>,
    private readonly expire: () => Promise<void>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Reads the next expiry from the store and arms the timer for it (at start, and as a backstop). */
  schedule(): void {
    if (this.stopped) return;
    this.nextExpiry().then((at) => this.arm(at), this.onError);
  }

  /** A lease was granted until `at` (ms since epoch, this process's clock): no lookup needed. */
  leased(at: number): void {
    this.arm(at);
  }

  /** A lease may move later (renewal) without re-arming: the timer fires, finds nothing, and re-arms. */
  private arm(at: number | undefined): void {
    if (this.stopped || at === undefined || at >= this.armedFor) return;
    clearTimeout(this.timer);
    this.armedFor = at;
    // A few ms late rather than early: the expiry test is "lease_expires_at <= now".
    this.timer = setTimeout(() => void this.fire(), Math.max(0, at - Date.now() + 5));
    this.timer.unref();
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    this.armedFor = Infinity;
    try {
      await this.expire();
    } catch (err) {
      this.onError(err);
    } finally {
      this.schedule();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
