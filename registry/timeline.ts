/**
 * Instances up over time, and the log service's lines per minute beside them, for the dashboard's chart
 * (GET /timeline). A sample every `sampleMs`, the last `keep` of them in memory: nothing is saved, so the
 * chart starts again with the registry. The log rate is the growth of `linesStored` in GET /logs/stats
 * of every up log instance; unknown (absent) when one of them does not answer, or one restarted.
 */
import type { Registry } from './registry.ts';
import { LOG_SERVICE } from '../logservice/config.ts';

export interface TimelineSample {
  at: string;
  up: number;
  down: number;
  logLinesPerMinute?: number;
}

interface Sample {
  at: number;
  up: number;
  down: number;
  logLines?: number;
  logLinesPerMinute?: number;
}

export interface TimelineOptions {
  sampleMs: number;
  keep: number;
  /** One GET /logs/stats may take this long. */
  timeoutMs: number;
  /** REGISTRY_TOKEN, which the log service's /logs takes as a bearer when it asks for a token (shared/readAccess.ts). */
  token?: string;
}

export const timelineDefaults: TimelineOptions = { sampleMs: 10_000, keep: 360, timeoutMs: 1000 };

export class Timeline {
  private readonly samples: Sample[] = [];
  private timer?: NodeJS.Timeout;
  private sampling = false;

  constructor(
    private readonly registry: Registry,
    private readonly options: TimelineOptions = timelineDefaults,
  ) {}

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.options.sampleMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The samples, oldest first, and the counts as they are now. */
  view(): { sampleMs: number; samples: TimelineSample[] } {
    const now: Sample = { ...this.counts(), at: Date.now() };
    return { sampleMs: this.options.sampleMs, samples: [...this.samples, now].map(({ at, up, down, logLinesPerMinute }) => ({ at: new Date(at).toISOString(), up, down, logLinesPerMinute })) };
  }

  private counts(): { up: number; down: number } {
    let up = 0;
    let down = 0;
    for (const record of this.registry.all()) record.state === 'up' ? up++ : down++;
    return { up, down };
  }

  private async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const at = Date.now();
      const logLines = await this.logLines();
      const sample: Sample = { at, ...this.counts(), logLines };
      const last = this.samples.at(-1);
      if (last?.logLines !== undefined && logLines !== undefined && logLines >= last.logLines) {
        sample.logLinesPerMinute = Math.round(((logLines - last.logLines) * 60_000) / (at - last.at));
      }
      this.samples.push(sample);
      if (this.samples.length > this.options.keep) this.samples.shift();
    } finally {
      this.sampling = false;
    }
  }

  private async logLines(): Promise<number | undefined> {
    const urls = this.registry.providers(LOG_SERVICE);
    if (urls.length === 0) return undefined;
    try {
      const counts = await Promise.all(
        urls.map(async (url) => {
          const headers: Record<string, string> = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
          const res = await fetch(`${url}/logs/stats`, { headers, signal: AbortSignal.timeout(this.options.timeoutMs) });
          if (!res.ok) throw new Error(`answered ${res.status}`);
          const stats = (await res.json()) as { linesStored?: unknown };
          if (typeof stats.linesStored !== 'number') throw new Error('no linesStored');
          return stats.linesStored;
        }),
      );
      return counts.reduce((a, b) => a + b, 0);
    } catch {
      return undefined;
    }
  }
}
