import type { Logger } from 'winston';
import type { Registry, InstanceRecord, RegistryChange } from './registry.ts';
import { hostPort as toHostPort, type Outbound, type OutboundResult } from './outbound.ts';
import { DueQueue } from './dueQueue.ts';
import { nextHealth } from './healthPolicy.ts';
import { jitter } from '../shared/backoff.ts';

export interface HealthCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Timeouts or bad statuses in a row before an instance is down (HEARTBEAT_FAILURES). */
  heartbeatFailures: number;
  /** Checks in flight at once, so hanging services can't starve the rest. */
  maxConcurrent: number;
  /** Whether this replica checks the instance (replicas split the checks); every one when unset. */
  owns?: (instanceId: string) => boolean;
}

/** About this many checks start at each wake of the schedule (see HealthChecker.start()). */
const CHECKS_PER_WAKE = 100;

export interface CheckObserver {
  onCheck?(record: InstanceRecord, result: OutboundResult): void;
}

/**
 * Checks every instance's heartbeatURL on a schedule (with jitter): the probe, and the record of
 * its result through the registry, with the verdict left to the pure policy (healthPolicy.ts).
 * A refused or reset connection is confirmed once, at once, on a fresh connection. It follows the
 * registry's changes itself: an instance is checked from its registration until it leaves.
 * Leases and evictions are the ExpiryWatcher's.
 */
export class HealthChecker {
  private readonly nextCheckAt = new Map<string, number>();
  /** Instances checked out of turn (checkSoon), whose next turn is spread over an interval. */
  private readonly outOfTurn = new Set<string>();
  private due = new DueQueue();
  /** The least time between two wakes (see start()). */
  private tickMs = 100;
  private minTickMs = 100;
  private maxTickMs = 100;
  private lastWakeAt = -Infinity;
  private timerAt = Infinity;
  /** Checks started since windowStart, which sets the tick for the next interval. */
  private startedInWindow = 0;
  private windowStart = 0;
  private running = false;
  private waking = false;
  private readonly inFlight = new Set<string>();
  private readonly waiting = new Set<InstanceRecord>();
  private idle: (() => void)[] = [];
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly outbound: Outbound,
    private readonly options: HealthCheckOptions,
    private readonly logger: Logger,
    private readonly observer: CheckObserver = {},
    private readonly now: () => number = Date.now,
  ) {
    registry.on('change', (change) => this.follow(change));
  }

  start(): void {
    this.stopped = false;
    this.running = true;
    // Each wake starts the checks due within half a tick either side of it, about CHECKS_PER_WAKE of them:
    // 1,000 instances at 1 s wake every 100 ms, a replica checking half of them every 200 ms, a few instances
    // every 200 ms, and nothing due, no wake at all; a check starts at most half a tick (100 ms) off its turn.
    // Checks that leave together come back together, and a process pays for every pass of its event loop:
    // with 20 per wake, two replicas checking 500 a second each passed their loops 1.56 times as often as
    // one checking all 1,000 (6,423 against 4,118 epoll waits in 10 s, for the same 9,900 requests) and
    // spent 1.30-1.48x its CPU; with 100 per wake, 1.20-1.24x (1.04-1.19x once every record had one shape,
    // instanceRecord.ts), and every registry spends less (bench:ha).
    // A wake's 100 request starts take about 2 ms of the loop.
    this.minTickMs = Math.max(10, Math.min(100, Math.floor(this.options.intervalMs / 50)));
    this.maxTickMs = Math.max(this.minTickMs, Math.min(250, Math.floor(this.options.intervalMs / 5)));
    this.tickMs = this.minTickMs;
    this.windowStart = this.now();
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.running = false;
    clearTimeout(this.timer);
    this.timerAt = Infinity;
  }

  /** How many instances are on the schedule: every one with a heartbeat URL, or on a replica, the ones it owns. */
  get scheduled(): number {
    return this.nextCheckAt.size;
  }

  get checksInFlight(): number {
    return this.inFlight.size;
  }

  /** Resolves once no check is in flight. */
  whenIdle(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Schedules an instance's check right away (at start-up, a takeover, a peer that closed our connection).
   * The turn after it falls at a random point between half an interval and one and a half: a start-up or a
   * takeover checks hundreds at once, and on the usual ±5 % they would stay one burst, interval after interval.
   */
  checkSoon(instanceId: string): void {
    this.outOfTurn.add(instanceId);
    this.schedule(instanceId, 0, true);
  }

  /**
   * A new instance: its first check comes at a random point within one interval, so a fleet's checks spread out.
   * Another replica's instance is not scheduled at all (a takeover schedules it with checkSoon), so a replica's
   * schedule, and its wakes, cost what it checks, not the size of the whole catalog.
   */
  track(instanceId: string): void {
    if (!this.ours(instanceId)) return;
    if (!this.nextCheckAt.has(instanceId)) this.schedule(instanceId, this.now() + Math.random() * this.options.intervalMs);
  }

  forget(instanceId: string): void {
    this.nextCheckAt.delete(instanceId);
    this.outOfTurn.delete(instanceId);
  }

  /** Whether this checker checks the instance: every one, or on a replica, the ones it owns. */
  private ours(instanceId: string): boolean {
    return !this.options.owns || this.options.owns(instanceId);
  }

  private follow({ type, instance }: RegistryChange): void {
    if (type === 'registered' || type === 'updated') this.track(instance.instanceId);
    else if (type === 'deregistered' || type === 'evicted') this.forget(instance.instanceId);
  }

  private schedule(instanceId: string, at: number, urgent = false): void {
    this.nextCheckAt.set(instanceId, at);
    this.due.push(at, instanceId);
    this.arm(urgent);
  }

  /**
   * Sets the timer for the earliest due check, but no sooner than a tick after the last wake; an urgent
   * check (a peer closed our connection) wakes at once.
   */
  private arm(urgent = false): void {
    if (!this.running || this.waking) return;
    const next = this.due.peek();
    if (next === Infinity) return;
    const at = urgent ? next : Math.max(next - this.leadMs(), this.lastWakeAt + this.tickMs);
    if (at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    // A timer may fire a fraction of a millisecond before Date.now() reaches its time: 1 ms more, so it finds its check due.
    this.timer = setTimeout(() => {
      this.timerAt = Infinity;
      this.checkDue();
    }, Math.max(0, at - this.now() + 1));
    this.timer.unref();
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
      if (!this.ours(record.instanceId)) continue;
      matches.push(record.instanceId);
      if (matches.length > 2) return;
    }
    for (const id of matches) this.checkSoon(id);
  }

  /** Checks every instance now, within the concurrency bound; resolves when all are done. */
  async sweep(): Promise<void> {
    const records = [...this.registry.all()].filter((r) => r.heartbeatURL && this.ours(r.instanceId));
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

  /** Starts the checks that are due (the queue holds them in order, so this costs what is due, not the size of the registry). */
  checkDue(): void {
    if (this.stopped) return;
    const now = this.now();
    this.lastWakeAt = now;
    if (now - this.windowStart >= this.options.intervalMs) {
      const perWake = Math.floor((this.options.intervalMs * CHECKS_PER_WAKE) / Math.max(1, this.startedInWindow));
      this.tickMs = Math.max(this.minTickMs, Math.min(this.maxTickMs, perWake));
      this.windowStart = now;
      this.startedInWindow = 0;
    }
    this.waking = true;
    try {
      this.startDue(now);
    } finally {
      this.waking = false;
    }
    this.arm();
  }

  /** How early a check may start: half a tick once the schedule runs (a test driving checkDue itself gets none). */
  private leadMs(): number {
    return this.running ? this.tickMs / 2 : 0;
  }

  private startDue(now: number): void {
    const horizon = now + this.leadMs();
    while (this.due.peek() <= horizon) {
      const { at, id } = this.due.pop();
      if (this.nextCheckAt.get(id) !== at) continue; // rescheduled or forgotten since
      const record = this.registry.get(id);
      if (!record?.heartbeatURL) {
        this.forget(id); // gone, or a lease: the ExpiryWatcher watches it
        continue;
      }
      if (this.inFlight.has(id)) {
        this.schedule(id, now + this.tickMs); // still being checked: look again next tick
        continue;
      }
      if (!this.ours(id)) {
        this.forget(id); // handed over to another replica: off our schedule until a takeover
        continue;
      }
      const interval = this.options.intervalMs;
      this.schedule(id, now + (this.outOfTurn.delete(id) ? interval * (0.5 + Math.random()) : jitter(interval, 0.05)));
      this.startedInWindow++;
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
      if (this.inFlight.size === 0) for (const resolve of this.idle.splice(0)) resolve();
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
    const health = nextHealth(record, result, this.options);
    if (record.state === 'down' && health.state === 'up') this.logger.info(`${record.serviceName} at ${record.serviceURL} is answering again`);
    if (record.state === 'up' && health.state === 'down' && !result.ok) {
      this.logger.warn(`${record.serviceName} at ${record.serviceURL} is down: ${result.message} (${health.consecutiveFailures} failure(s) in a row)`);
    }
    this.registry.recordCheck(record, result, health, this.now());
    this.observer.onCheck?.(record, result);
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
