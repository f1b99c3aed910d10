/** The chaos run's monitor: samples the registry, the master and the log client every 250 ms for the recovery figures. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { InstanceView } from '../../registry/protocol.ts';
import type { Managed } from './cluster.ts';
import { getJson } from './poll.ts';
import { healthy, listing, watcherDisagreements, type Platform } from './platform.ts';

export interface Sample {
  at: number;
  instances?: InstanceView[];
  registryHealthMs?: number;
  counts?: Record<string, number>;
  log?: LogProgress;
  watchersDiffering?: number;
  healthy?: boolean;
}

export interface LogProgress {
  total: number;
  emitted: number;
  shipped: number;
  dropped: number;
  rejected: number;
  buffered: number;
  posts: number;
  retries: number;
}

export class Monitor {
  readonly samples: Sample[] = [];
  stopped?: Managed;
  private running = true;
  private loops: Promise<void>[] = [];
  maxRegistryHealthMs = 0;
  maxCheckLatencyMs = 0;

  constructor(private readonly p: Platform, private readonly watcherUrls: string[]) {}

  start(): void {
    this.loops.push(this.loop(250, () => this.sample()));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(intervalMs: number, fn: () => Promise<void>): Promise<void> {
    while (this.running) {
      const started = Date.now();
      await fn().catch(() => undefined);
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
  }

  private round = 0;
  private async sample(): Promise<void> {
    const s: Sample = { at: Date.now() };
    const started = performance.now();
    const [instances, counts, log] = await Promise.all([
      listing(this.p).catch(() => undefined),
      getJson<{ counts: Record<string, number> }>(`${this.p.master.url}/tasks?limit=1`, 2000).then((b) => b.counts, () => undefined),
      getJson<LogProgress>(`${this.p.logClient.url}/progress`, 2000).catch(() => undefined),
    ]);
    if (instances) {
      s.instances = instances;
      s.registryHealthMs = performance.now() - started;
      this.maxRegistryHealthMs = Math.max(this.maxRegistryHealthMs, s.registryHealthMs);
      for (const i of instances) if (i.lastLatencyMs !== undefined) this.maxCheckLatencyMs = Math.max(this.maxCheckLatencyMs, i.lastLatencyMs);
      s.healthy = healthy(this.p, instances, this.stopped);
      if (this.round++ % 4 === 0) s.watchersDiffering = (await watcherDisagreements(this.watcherUrls, instances).catch(() => undefined))?.differing;
    }
    s.counts = counts;
    s.log = log;
    this.samples.push(s);
  }

  /** The first sample at or after `from` that satisfies the predicate. */
  firstAfter(from: number, predicate: (s: Sample) => boolean | undefined): Sample | undefined {
    return this.samples.find((s) => s.at >= from && predicate(s));
  }

  lastBefore(at: number, predicate: (s: Sample) => boolean | undefined = () => true): Sample | undefined {
    for (let i = this.samples.length - 1; i >= 0; i--) if (this.samples[i].at < at && predicate(this.samples[i])) return this.samples[i];
    return undefined;
  }
}
