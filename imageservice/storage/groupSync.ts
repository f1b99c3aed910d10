/**
 * One fsync for a group of writers (group commit): a caller that arrives while a sync runs waits
 * for the next one (the running one may have started before its change), and every caller that
 * arrives meanwhile shares that next one.
 */
export class GroupSync {
  private running?: Promise<void>;
  private next?: Promise<void>;

  constructor(private readonly sync: () => Promise<void>) {}

  request(): Promise<void> {
    if (!this.running) return this.start();
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    const run: Promise<void> = this.sync().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }
}
