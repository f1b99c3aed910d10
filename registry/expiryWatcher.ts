import type { Logger } from 'winston';
import type { InstanceRecord, Registry } from './registry.ts';
import { leaseExpired } from './downReason.ts';

export interface ExpiryOptions {
  intervalMs: number;
  /** How long an instance may stay down before it is forgotten (EVICT_AFTER_MS). */
  evictAfterMs: number;
  /** Whether this replica watches the instance (replicas split the work); every one when unset. */
  owns?: (instanceId: string) => boolean;
}

/**
 * Time's part in an instance's health, apart from the checks: a lease that lapsed means down, and an
 * instance down for longer than evictAfterMs is forgotten. A scan every quarter interval (at most
 * 250 ms) keeps a lapsed lease from being offered for long, at a cost of one walk over the registry.
 */
export class ExpiryWatcher {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly registry: Registry,
    private readonly options: ExpiryOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    const every = Math.max(10, Math.min(250, this.options.intervalMs / 4));
    this.timer = setInterval(() => this.scan(), every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  scan(): void {
    const now = this.now();
    // Whose record it is is asked last, of the few that are due: the walk stays a walk, not a hash per record.
    const mine = (record: InstanceRecord) => !this.options.owns || this.options.owns(record.instanceId);
    for (const record of this.registry.all()) {
      if (!record.heartbeatURL && record.leaseExpiresAt !== undefined && record.leaseExpiresAt < now && mine(record)) {
        this.registry.markDown(record, leaseExpired(record.leaseExpiresAt), now);
      }
      if (record.state === 'down' && record.downSince !== undefined && now - record.downSince >= this.options.evictAfterMs && mine(record)) {
        this.logger.info(`evicting ${record.serviceName} at ${record.serviceURL}: down for ${now - record.downSince} ms`);
        this.registry.remove(record.instanceId, 'evicted');
      }
    }
  }
}
