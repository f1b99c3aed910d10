/**
 * Log service benchmark (`npm run bench:logs`), figures to docs/benchmarks.md:
 *   1. lines/s end to end, from logger.info in one client process to lines written to the files
 *      by the log service, with the batching transport (LogShipper, default settings)
 *   2. the same with one POST per line (the reference Go client's pattern), in the same run
 *   3. intake: four clients posting JSON arrays of 1,000 lines as fast as they are answered (a 202 means
 *      written and fsynced), the lines/s the log service takes and its RSS
 *   4. backpressure: a small write queue (LOG_QUEUE_LIMIT) and four clients at full speed; 503 +
 *      Retry-After must be seen, every line must arrive once, and memory must stay bounded
 * The log service's CPU and RSS are sampled from /proc throughout. Every line is checked on disk.
 * The client runs as a child process (this file with `client`), with the shipper as its only transport (no console):
 * the figure is the shipping path, not a terminal's speed.
 *
 * BENCH_LOG_NODE_ARGS adds node flags to every log service it starts, to look inside: "--cpu-prof --cpu-prof-dir=/tmp/prof".
 *
 * Its parts are in bench/logs/ (client, logService, shipping, intake, pressure, summary); this file keeps the run's order.
 */
import fs from 'node:fs';
import os from 'node:os';
import { writeReport } from './report.ts';
import { runClient, type ClientConfig } from './logs/client.ts';
import { benchShipping } from './logs/shipping.ts';
import { benchIntake } from './logs/intake.ts';
import { benchPressure } from './logs/pressure.ts';
import { renderReport } from './logs/summary.ts';

async function main(): Promise<void> {
  const batchedLines = Number(process.env.BENCH_LOG_LINES ?? 150_000);
  const perLineLines = Number(process.env.BENCH_LOG_PER_LINE ?? 2000);
  const loadBefore = os.loadavg()[0];
  const shipping = await benchShipping(batchedLines, perLineLines);
  const intake = await benchIntake();
  const pressure = await benchPressure();
  const loadAfter = os.loadavg()[0];
  const body = renderReport({ shipping, intake, pressure, loadBefore, loadAfter });
  writeReport('logs', 'Log service: end-to-end lines/s, batched vs one POST per line, intake of JSON arrays, backpressure', 'npm run bench:logs', body);
  fs.rmSync(shipping.dataDir, { recursive: true, force: true });
  fs.rmSync(pressure.dataDir, { recursive: true, force: true });
  fs.rmSync(intake.dataDir, { recursive: true, force: true });
}

if (process.argv[2] === 'client') {
  await runClient(JSON.parse(process.argv[3]) as ClientConfig);
  process.exit(0);
} else {
  await main();
  process.exit(0);
}
