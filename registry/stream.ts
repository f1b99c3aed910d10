/**
 * GET /services/stream: the registry's changes as server-sent events (shared/sseHub.ts). A snapshot,
 * then every registration and state change at once, and instead of an event per check at most one
 * small `checked` summary a second. A watcher that reads too slowly is cut off and resumes with
 * Last-Event-ID; it never costs the registry more than its cap.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { SseHub } from '../shared/sseHub.ts';
import { prom } from '../shared/metrics.ts';
import type { InstanceRecord, Registry, RegistryChange } from './registry.ts';
import { toView } from './instanceView.ts';
import type { OutboundResult } from './outbound.ts';
import type { CheckedInstance, CheckSummary, RegistryEvent } from './protocol.ts';

export interface StreamLimits {
  maxClients: number;
  /** Bytes a watcher may leave unread (beyond its snapshot) before it is cut off. */
  maxQueuedBytes: number;
  /** Bytes of recent events held, so a watcher that reconnects resumes instead of taking a new snapshot. */
  replayBytes: number;
  heartbeatMs: number;
}

export const streamDefaults: StreamLimits = {
  maxClients: 500,
  maxQueuedBytes: 1024 * 1024,
  replayBytes: 2 * 1024 * 1024,
  heartbeatMs: 15_000,
};

/** A summary lists at most this many instances (a fleet-wide failure must not make it large). */
const MAX_LISTED = 100;
/**
 * Watchers that connect within this share one snapshot, followed by the changes since it was made (its check
 * fields may be this old). Taking a snapshot per change instead cost a multi-megabyte string and buffer for each
 * watcher that connected between two changes: 200 watchers that connected as 20 new instances came up held 100 MB.
 */
const SNAPSHOT_MAX_AGE_MS = 5000;

interface Watch {
  names?: Set<string>;
  key: string;
}

const sees = (watch: Watch, serviceName: string) => !watch.names || watch.names.has(serviceName);

function checkFields(record: InstanceRecord): CheckedInstance {
  const { instanceId, serviceName, state, lastCheckAt, lastLatencyMs, consecutiveFailures, lastError } = toView(record);
  return { instanceId, serviceName, state, lastCheckAt, lastLatencyMs, consecutiveFailures, lastError };
}

export class RegistryStream {
  private readonly hub: SseHub<Watch>;
  /** Checks (and failed ones) by service name since the last summary. */
  private checks = new Map<string, { checks: number; failed: number }>();
  /** Instances whose failure count or error changed since the last summary. */
  private changed = new Set<string>();

  constructor(
    private readonly registry: Registry,
    limits: StreamLimits = streamDefaults,
    metrics?: prom.Registry,
  ) {
    this.hub = new SseHub<Watch>({
      ...limits,
      summaryMs: 1000,
      retryMs: 1000,
      // Ids name this process, so a watcher of the registry before a restart takes a new snapshot.
      epoch: `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
      filterKey: (watch) => watch.key,
      greet: ({ filter }) => [{ event: 'snapshot', data: this.snapshot(filter) }],
      greetingMaxAgeMs: SNAPSHOT_MAX_AGE_MS,
    });
    if (!metrics) return;
    const hub = this.hub;
    new prom.Gauge({ name: 'registry_stream_clients', help: 'Open GET /services/stream watchers', registers: [metrics], collect() { this.set(hub.size); } });
    new prom.Gauge({
      name: 'registry_stream_queued_bytes',
      help: 'Bytes written to watchers and not yet read (each watcher counted)',
      registers: [metrics],
      collect() {
        this.set(hub.queuedBytes);
      },
    });
    new prom.Counter({
      name: 'registry_stream_disconnects_total',
      help: 'Watchers cut off for leaving more than the cap unread',
      registers: [metrics],
      collect() {
        this.reset();
        this.inc(hub.disconnects);
      },
    });
  }

  get size(): number {
    return this.hub.size;
  }

  /** Starts a watcher; `names` limits it to those services. Throws a 503 HttpError when too many are open. */
  open(req: IncomingMessage, res: ServerResponse, names?: string[]): void {
    const set = names?.length ? new Set(names) : undefined;
    this.hub.open(req, res, { names: set, key: set ? [...set].sort().join(',') : '' });
  }

  /** A registration or a state change: sent at once. */
  onChange({ type, instance, previous, replacedBy }: RegistryChange): void {
    const moved = previous && (previous.instanceId !== instance.instanceId || previous.serviceURL !== instance.serviceURL);
    const before = moved ? { instanceId: previous.instanceId, serviceURL: previous.serviceURL } : undefined;
    const event = () => JSON.stringify({ type, instance: toView(instance), previous: before, replacedBy } satisfies RegistryEvent);
    this.hub.publish([{ event: type, data: event, match: (watch) => sees(watch, instance.serviceName) }]);
  }

  /** A check finished (before its result is applied to the record): counted, and coalesced into the next summary. */
  onCheck(record: InstanceRecord, result: OutboundResult): void {
    if (this.hub.size === 0) return;
    let counts = this.checks.get(record.serviceName);
    if (!counts) this.checks.set(record.serviceName, (counts = { checks: 0, failed: 0 }));
    counts.checks++;
    if (!result.ok) counts.failed++;
    // Routine: another success, or another failure of an instance already down for the same reason.
    const material = result.ok ? record.consecutiveFailures > 0 : record.state === 'up' || record.lastError !== result.message;
    if (material) this.changed.add(record.instanceId);
    this.hub.summarize('checked', () => this.summary());
  }

  close(): void {
    this.hub.close();
  }

  private snapshot(watch: Watch): string {
    const instances = this.registry.list(watch.names && [...watch.names]).map(toView);
    return JSON.stringify({ type: 'snapshot', instances } satisfies RegistryEvent);
  }

  /** Takes what was counted since the last summary; gives each watch its own summary. */
  private summary(): (watch: Watch) => string | undefined {
    const checks = this.checks;
    const changed = [...this.changed].map((id) => this.registry.get(id)).filter((r): r is InstanceRecord => r !== undefined);
    this.checks = new Map();
    this.changed = new Set();
    const at = new Date().toISOString();
    return (watch) => {
      let total = 0;
      let failed = 0;
      for (const [name, counts] of checks) {
        if (!sees(watch, name)) continue;
        total += counts.checks;
        failed += counts.failed;
      }
      if (total === 0) return undefined;
      let up = 0;
      let down = 0;
      for (const record of watch.names ? this.registry.list([...watch.names]) : this.registry.all()) record.state === 'up' ? up++ : down++;
      const mine = changed.filter((record) => sees(watch, record.serviceName));
      const summary: CheckSummary = { type: 'checked', at, checks: total, failed, up, down, instances: mine.slice(0, MAX_LISTED).map(checkFields) };
      if (mine.length > MAX_LISTED) summary.more = mine.length - MAX_LISTED;
      return JSON.stringify(summary satisfies RegistryEvent);
    };
  }
}
