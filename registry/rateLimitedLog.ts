import type { Logger } from 'winston';

/**
 * An info log limited to `linesPerSecond` lines: past that, lines go to debug and are counted in one
 * summary line per second. The registry logs routine changes (registrations, deregistrations) through
 * it, because a fleet registering at thousands a second should not spend most of its time logging.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly logger: Logger,
    private readonly linesPerSecond = 20,
  ) {}

  /** `kind` names the change for the summary ("registered"); `line` is the full message. */
  info(kind: string, line: string): void {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (++this.inWindow <= this.linesPerSecond) {
      this.logger.info(line);
      return;
    }
    // Winston formats a line before its transports look at the level: don't build one nobody keeps.
    if (this.logger.isDebugEnabled()) this.logger.debug(line);
    this.suppressed.set(kind, (this.suppressed.get(kind) ?? 0) + 1);
    this.timer ??= setTimeout(() => this.flush(), 1000);
    this.timer.unref?.();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.suppressed.size === 0) return;
    const parts = [...this.suppressed].map(([kind, count]) => `${count} more ${kind}`);
    this.suppressed.clear();
    this.logger.info(`busy: ${parts.join(', ')} in the last second (each at debug level)`);
  }
}
