/**
 * Phases 1 and 2: one log service at the default settings; the batching shipper against one POST per
 * line (the reference Go client's pattern), in alternating rounds so a burst of load from elsewhere hits
 * both modes alike; medians are reported.
 */
import { client, type ClientResult } from './client.ts';
import { onDisk, Sampler, startLog, type DiskCount } from './logService.ts';

/** One client run and the log service's CPU seconds during it. */
export interface Run {
  result: ClientResult;
  cpu: number;
}

export interface ShippingFigures {
  batchedRuns: Run[];
  perLineRuns: Run[];
  batchedMedian: Run;
  perLineMedian: Run;
  disk: DiskCount;
  /** The log service's peak RSS in these two phases. */
  peakNormal: number;
  dataDir: string;
}

export async function benchShipping(batchedLines: number, perLineLines: number): Promise<ShippingFigures> {
  const log = await startLog({});
  const sampler = new Sampler(log.child.pid!);
  const rounds = Number(process.env.BENCH_LOG_ROUNDS ?? 3);
  const batchedRuns: Run[] = [];
  const perLineRuns: Run[] = [];
  try {
    await client({ url: log.url, tag: 'warmup', lines: 50_000, shipper: {}, waitForDisk: true });
    for (let round = 0; round < rounds; round++) {
      let before = sampler.sample().cpuSeconds;
      const result = await client({ url: log.url, tag: `batched-${round}`, lines: batchedLines, shipper: {}, waitForDisk: true, warmUpLines: 30_000 });
      batchedRuns.push({ result, cpu: sampler.sample().cpuSeconds - before });
      before = sampler.sample().cpuSeconds;
      const single = await client({
        url: log.url,
        tag: `per-line-${round}`,
        lines: perLineLines,
        shipper: { batchLines: 1, batchIntervalMs: 0, concurrency: 1 },
        waitForDisk: true,
      });
      perLineRuns.push({ result: single, cpu: sampler.sample().cpuSeconds - before });
    }
  } finally {
    sampler.stop();
    await log.stop();
  }
  const median = (runs: Run[]) => [...runs].sort((a, b) => a.result.lines / a.result.seconds - b.result.lines / b.result.seconds)[Math.floor(runs.length / 2)];
  return {
    batchedRuns,
    perLineRuns,
    batchedMedian: median(batchedRuns),
    perLineMedian: median(perLineRuns),
    disk: onDisk(log.dataDir),
    peakNormal: sampler.peakRssMB,
    dataDir: log.dataDir,
  };
}
