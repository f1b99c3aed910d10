import type { Logger } from 'winston';
import type { Registry, InstanceRecord } from './registry.ts';
import { hostPort as toHostPort, type Outbound, type OutboundResult } from './outbound.ts';
import { jitter } from '../shared/backoff.ts';

export interface HealthCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Timeouts or bad statuses in a row before an instance is down. */
  failuresBeforeDown: number;
  /** Checks in flight at once, so hanging services can't starve the rest. */
  maxConcurrent: number;
  /** How long an instance may stay down before it is forgotten. */
  evictAfterMs: number;
}

export interface CheckObserver {
  onCheck?(record: InstanceRecord, result: OutboundResult): void;
}

/**
 * Checks every instance's heartbeatURL on a schedule (with jitter), and every lease's expiry.
 * A refused or reset connection is confirmed once, at once, on a fresh connection, and then the
 * instance is down; timeouts and bad statuses need `failuresBeforeDown` in a row.
 */
export class HealthChecker {
  private readonly nextCheckAt = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private readonly waiting = new Set<InstanceRecord>();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly outbound: Outbound,
    private readonly options: HealthCheckOptions,
    private readonly logger: Logger,
    private readonly observer: CheckObserver = {},
  ) {}

  start(): void {
    this.stopped = false;
    // Small ticks: each one starts only the checks due now, so a fleet's checks never leave in one
    // burst that would hold up patches and registrations (1,000 instances at 1 s: ~20 per tick).
    const tickMs = Math.max(10, Math.min(100, Math.floor(this.options.intervalMs / 50)));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  get checksInFlight(): number {
    return this.inFlight.size;
  }

  /** Schedules an instance's next check right away (after registration or start-up). */
  checkSoon(instanceId: string): void {
    this.nextCheckAt.set(instanceId, 0);
  }

  /**
   * A peer closed a connection of ours: if one or two instances have their heartbeat on that
   * host:port, check them now instead of at their next turn (a killed process closes its sockets).
   * More than that (many instances behind one origin) and it isn't telling: wait for the schedule.
   */
  peerClosed(hostPort: string): void {
    if (this.stopped) return;
    const matches: string[] = [];
    for (const record of this.registry.all()) {
      if (!record.heartbeatURL || record.state !== 'up' || heartbeatHostPort(record.heartbeatURL) !== hostPort) continue;
      matches.push(record.instanceId);
      if (matches.length > 2) return;
    }
    for (const id of matches) this.checkSoon(id);
  }

  forget(instanceId: string): void {
    this.nextCheckAt.delete(instanceId);
  }

  /** Checks every instance now, within the concurrency bound; resolves when all are done. */
  async sweep(): Promise<void> {
    const records = [...this.registry.all()].filter((r) => r.heartbeatURL);
    let next = 0;
    const lane = async () => {
      while (next < records.length) {
        const record = records[next++];
        if (this.inFlight.has(record.instanceId)) continue;
        await this.check(record);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.maxConcurrent, records.length) }, lane));
  }

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (const record of this.registry.all()) {
      this.expireOrEvict(record, now);
      if (!record.heartbeatURL || this.inFlight.has(record.instanceId)) continue;
      const due = this.nextCheckAt.get(record.instanceId);
      if (due === undefined) {
        // New to the schedule: spread first checks over one interval.
        this.nextCheckAt.set(record.instanceId, now + Math.random() * this.options.intervalMs);
        continue;
      }
      if (due > now) continue;
      this.nextCheckAt.set(record.instanceId, now + jitter(this.options.intervalMs, 0.05));
      if (this.inFlight.size < this.options.maxConcurrent) void this.check(record);
      else this.waiting.add(record);
    }
    for (const id of this.nextCheckAt.keys()) if (!this.registry.get(id)) this.nextCheckAt.delete(id);
  }

  private expireOrEvict(record: InstanceRecord, now: number): void {
    if (!record.heartbeatURL && record.leaseExpiresAt !== undefined && record.leaseExpiresAt < now) {
      this.registry.markDown(record, `lease expired ${now - record.leaseExpiresAt} ms ago`, now);
    }
    if (record.state === 'down' && record.downSince !== undefined && now - record.downSince >= this.options.evictAfterMs) {
      this.logger.info(`evicting ${record.serviceName} at ${record.serviceURL}: down for ${now - record.downSince} ms`);
      this.registry.remove(record.instanceId, 'evicted');
      this.forget(record.instanceId);
    }
  }

  private async check(record: InstanceRecord): Promise<void> {
    const url = record.heartbeatURL;
    if (!url) return;
    this.inFlight.add(record.instanceId);
    try {
      let result = await this.outbound.request('GET', url, this.options.timeoutMs);
      if (!result.ok && result.kind === 'connection' && !this.stopped) {
        // Strong evidence of death, or a stale pooled socket: confirm once, at once, on a new connection.
        result = await this.outbound.request('GET', url, this.options.timeoutMs, undefined, true);
      }
      if (this.stopped || this.registry.get(record.instanceId) !== record || record.heartbeatURL !== url) return;
      this.apply(record, result);
    } finally {
      this.inFlight.delete(record.instanceId);
      this.startWaiting();
    }
  }

  /** A slot came free: the longest-waiting instance that still exists and isn't being checked goes next. */
  private startWaiting(): void {
    for (const waiting of this.waiting) {
      this.waiting.delete(waiting);
      if (this.stopped) return;
      if (this.registry.get(waiting.instanceId) !== waiting || this.inFlight.has(waiting.instanceId)) continue;
      void this.check(waiting);
      return;
    }
  }

  private apply(record: InstanceRecord, result: OutboundResult): void {
    const now = Date.now();
    record.lastCheckAt = now;
    record.lastLatencyMs = result.latencyMs;
    this.observer.onCheck?.(record, result);
    if (result.ok) {
      if (record.state === 'down') this.logger.info(`${record.serviceName} at ${record.serviceURL} is answering again`);
      this.registry.markUp(record, now);
      return;
    }
    record.consecutiveFailures++;
    record.lastError = result.message;
    const confirmedDead = result.kind === 'connection';
    if (record.state === 'up' && (confirmedDead || record.consecutiveFailures >= this.options.failuresBeforeDown)) {
      this.logger.warn(
        `${record.serviceName} at ${record.serviceURL} is down: ${result.message} (${record.consecutiveFailures} failure(s) in a row)`,
      );
      this.registry.markDown(record, result.message, now);
    }
  }
}

const hostPorts = new Map<string, string>();

/** "host:port" of a heartbeat URL, as Outbound names the origins of its connections (memoised: URLs repeat every interval). */
function heartbeatHostPort(url: string): string {
  let hostPort = hostPorts.get(url);
  if (hostPort === undefined) {
    hostPort = toHostPort(new URL(url));
    if (hostPorts.size > 100_000) hostPorts.clear();
    hostPorts.set(url, hostPort);
  }
  return hostPort;
}
