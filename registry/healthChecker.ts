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
/** Due times, earliest first. Entries are not removed when rescheduled: one that no longer matches nextCheckAt is skipped. */
class DueQueue {
  private readonly at: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.at.length;
  }

  peek(): number {
    return this.at.length ? this.at[0] : Infinity;
  }

  push(at: number, id: string): void {
    let i = this.at.length;
    this.at.push(at);
    this.ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.at[parent] <= at) break;
      this.at[i] = this.at[parent];
      this.ids[i] = this.ids[parent];
      i = parent;
    }
    this.at[i] = at;
    this.ids[i] = id;
  }

  pop(): { at: number; id: string } {
    const top = { at: this.at[0], id: this.ids[0] };
    const lastAt = this.at.pop()!;
    const lastId = this.ids.pop()!;
    const n = this.at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && this.at[child + 1] < this.at[child]) child++;
        if (this.at[child] >= lastAt) break;
        this.at[i] = this.at[child];
        this.ids[i] = this.ids[child];
        i = child;
      }
      this.at[i] = lastAt;
      this.ids[i] = lastId;
    }
    return top;
  }
}

export class HealthChecker {
  private readonly nextCheckAt = new Map<string, number>();
  private due = new DueQueue();
  private lastScanAt = 0;
  private tickMs = 100;
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
    this.tickMs = Math.max(10, Math.min(100, Math.floor(this.options.intervalMs / 50)));
    this.timer = setInterval(() => this.tick(), this.tickMs);
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
    this.schedule(instanceId, 0);
  }

  /** A new instance: its first check comes at a random point within one interval, so a fleet's checks spread out. */
  track(instanceId: string): void {
    if (!this.nextCheckAt.has(instanceId)) this.schedule(instanceId, Date.now() + Math.random() * this.options.intervalMs);
  }

  private schedule(instanceId: string, at: number): void {
    this.nextCheckAt.set(instanceId, at);
    this.due.push(at, instanceId);
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

  /**
   * Starts the checks that are due (the queue holds them in order, so a tick costs what is due,
   * not the size of the registry), and now and then looks at every instance for lapsed leases
   * and long-down instances to evict.
   */
  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - this.lastScanAt >= Math.max(this.tickMs, Math.min(250, this.options.intervalMs / 4))) {
      this.lastScanAt = now;
      for (const record of this.registry.all()) this.expireOrEvict(record, now);
    }
    while (this.due.peek() <= now) {
      const { at, id } = this.due.pop();
      if (this.nextCheckAt.get(id) !== at) continue; // rescheduled or forgotten since
      const record = this.registry.get(id);
      if (!record) {
        this.nextCheckAt.delete(id);
        continue;
      }
      if (!record.heartbeatURL) {
        this.nextCheckAt.delete(id); // a lease: the scan above watches it
        continue;
      }
      if (this.inFlight.has(id)) {
        this.schedule(id, now + this.tickMs); // still being checked: look again next tick
        continue;
      }
      this.schedule(id, now + jitter(this.options.intervalMs, 0.05));
      if (this.inFlight.size < this.options.maxConcurrent) void this.check(record);
      else this.waiting.add(record);
    }
    // Stale entries pile up when instances come and go; rebuild the queue when they outnumber the live ones.
    if (this.due.size > 2 * this.nextCheckAt.size + 1024) this.rebuild();
  }

  private rebuild(): void {
    const entries = [...this.nextCheckAt];
    this.due = new DueQueue();
    for (const [id, at] of entries) this.due.push(at, id);
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
