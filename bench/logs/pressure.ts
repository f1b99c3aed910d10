/** Phase 4, backpressure: a small write queue (LOG_QUEUE_LIMIT) and four client processes at full speed. */
import { client, type ClientResult } from './client.ts';
import { metricSum, onDisk, Sampler, startLog, type DiskCount } from './logService.ts';

export interface PressureFigures {
  queueLimit: number;
  clients: number;
  lines: number;
  results: ClientResult[];
  /** The log service's 503 answers (log_requests_total{outcome="busy"}). */
  busy: number;
  seconds: number;
  peakRssMB: number;
  disk: DiskCount;
  dataDir: string;
}

export async function benchPressure(): Promise<PressureFigures> {
  const clients = 4;
  const lines = 50_000;
  const queueLimit = 256 * 1024;
  const pressured = await startLog({ LOG_QUEUE_LIMIT: String(queueLimit) });
  const sampler = new Sampler(pressured.child.pid!);
  let results: ClientResult[];
  let busy: number;
  let seconds: number;
  try {
    const t0 = performance.now();
    results = await Promise.all(
      Array.from({ length: clients }, (_, c) => client({ url: pressured.url, tag: `pressure-${c}`, lines, shipper: { batchLines: 2000 }, waitForDisk: false })),
    );
    seconds = (performance.now() - t0) / 1000;
    busy = await metricSum(pressured.url, 'log_requests_total', 'outcome="busy"');
  } finally {
    sampler.stop();
    await pressured.stop();
  }
  return { queueLimit, clients, lines, results, busy, seconds, peakRssMB: sampler.peakRssMB, disk: onDisk(pressured.dataDir), dataDir: pressured.dataDir };
}
