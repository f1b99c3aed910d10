/**
 * What a bulk submit tells its person: on a terminal, one bar for the job (tasks ended of total, bytes uploaded,
 * images per second, ETA) with a line above it for each file skipped or failed; with --json, one JSON object per
 * line on stdout instead (event: job, skipped, uploaded, done, failed, progress, summary); otherwise the lines alone.
 */
import cliProgress from 'cli-progress';
import { jsonText, printable } from '../../shared/cli.ts';

export type ReportMode = 'bar' | 'json' | 'lines';

export interface ProgressCounts {
  total: number;
  ended: number;
  sentBytes: number;
  bytes: number;
}

export const byteSize = (n: number) => (n < 1000 ? `${n} B` : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : n < 1e9 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e9).toFixed(2)} GB`);

export class BulkProgress {
  private bar: cliProgress.SingleBar | undefined;
  private bars: cliProgress.MultiBar | undefined;
  private readonly startedAt = Date.now();
  private endedAtStart = -1;
  private lastJsonAt = 0;
  private counts: ProgressCounts = { total: 0, ended: 0, sentBytes: 0, bytes: 0 };

  constructor(
    private readonly mode: ReportMode,
    private readonly out: (line: string) => void,
    private readonly err: (line: string) => void,
  ) {}

  /** A machine-readable event (--json only). */
  event(event: string, fields: Record<string, unknown>): void {
    if (this.mode === 'json') this.out(jsonText({ event, ...fields }));
  }

  /** A line a person should see (a skipped or failed file, a warning): above the bar, or on stderr. */
  line(text: string): void {
    if (this.mode === 'json') return;
    if (this.bars) this.bars.log(`${printable(text)}\n`);
    else this.err(printable(text));
  }

  start(counts: ProgressCounts): void {
    this.counts = { ...counts };
    this.endedAtStart = counts.ended;
    if (this.mode !== 'bar') return;
    this.bars = new cliProgress.MultiBar(
      {
        format: ' {bar} {value}/{total} tasks | {sent} sent | {rate} images/s | ETA {timeLeft}',
        hideCursor: true,
        clearOnComplete: false,
        barsize: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.bars.create(counts.total, counts.ended, this.payload());
  }

  update(change: Partial<ProgressCounts>): void {
    this.counts = { ...this.counts, ...change };
    if (this.bar) {
      this.bar.setTotal(this.counts.total);
      this.bar.update(this.counts.ended, this.payload());
    }
    if (this.mode === 'json' && Date.now() - this.lastJsonAt >= 1000) {
      this.lastJsonAt = Date.now();
      this.event('progress', { ...this.counts, imagesPerSecond: this.rate() });
    }
  }

  /** Images ended per second in this run (what was done before it doesn't count). */
  private rate(): number {
    const seconds = (Date.now() - this.startedAt) / 1000;
    return seconds > 0 ? Math.round(((this.counts.ended - Math.max(0, this.endedAtStart)) / seconds) * 10) / 10 : 0;
  }

  private payload(): Record<string, string> {
    const rate = this.rate();
    const left = this.counts.total - this.counts.ended;
    const eta = left === 0 ? '0s' : rate > 0 ? seconds(left / rate) : '?';
    return { sent: `${byteSize(this.counts.sentBytes)} of ${byteSize(this.counts.bytes)}`, rate: rate.toFixed(1), timeLeft: eta };
  }

  stop(): void {
    this.bars?.stop();
    this.bars = undefined;
    this.bar = undefined;
  }
}

function seconds(s: number): string {
  if (s < 90) return `${Math.ceil(s)}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}
