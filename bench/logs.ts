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
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep, setImmediate as yieldNow } from 'node:timers/promises';
import { procStats, writeReport } from './report.ts';
import { startProcess, tempDir, type Proc } from '../harness/processes.ts';
import { createLogger } from '../shared/logger.ts';
import { ProviderTable } from '../shared/providers.ts';
import { LogShipper } from '../logservice/shipper.ts';
import type { LogShipperOptions } from '../logservice/shipperConfig.ts';
import { platformService } from '../platform/services.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);

interface ClientConfig {
  url: string;
  tag: string;
  lines: number;
  shipper: Partial<LogShipperOptions>;
  /** Wait for this many more lines on disk (single-client phases) or only for the acks. */
  waitForDisk: boolean;
  /** Lines logged (and waited for on disk) before the clock starts, so the JIT has compiled the path: the figure is the sustained rate. */
  warmUpLines?: number;
}

interface ClientResult {
  tag: string;
  lines: number;
  seconds: number;
  loggedSeconds: number;
  posts: number;
  retries: number;
  throttled: number;
  dropped: number;
  /** The client process's CPU seconds from the first measured line to the last on disk. */
  cpuSeconds?: number;
}

async function linesWritten(url: string): Promise<number> {
  return ((await (await fetch(`${url}/logs/stats`)).json()) as { linesWritten: number }).linesWritten;
}

// ---------------------------------------------------------------------------------------------
// The client role: one logger, one LogShipper, N lines as fast as the shipper takes them.

async function runClient(config: ClientConfig): Promise<void> {
  const providers = new ProviderTable();
  providers.replace('log', [config.url]);
  const logger = createLogger(`bench-${config.tag}`, { level: 'info' });
  // The console transport is taken out (not just silenced: winston would still hand it every line).
  logger.clear();
  const shipper = new LogShipper({ providers, serviceName: `bench-${config.tag}`, ...config.shipper });
  logger.add(shipper);
  const bufferLines = config.shipper.bufferLines ?? 10_000;
  const highWater = Math.floor(bufferLines * 0.8);
  if (config.warmUpLines) {
    const before = await linesWritten(config.url);
    for (let i = 0; i < config.warmUpLines; i++) {
      logger.info(`bench ${config.tag} warm-up line ${i}: the quick brown fox jumps over the lazy dog`, { tag: `${config.tag}/warm-up`, i });
      if ((i & 1023) === 1023) while (shipper.buffered > highWater) await sleep(1);
    }
    while ((await linesWritten(config.url)) < before + config.warmUpLines) await sleep(5);
  }
  const base = config.waitForDisk ? await linesWritten(config.url) : 0;

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < config.lines; i++) {
    logger.info(`bench ${config.tag} line ${i}: the quick brown fox jumps over the lazy dog`, { tag: config.tag, i });
    if ((i & 255) === 255) {
      // Keep the producer within the buffer bound, so the figure is sustained shipping, not drops.
      // And let the event loop run every 256 lines (~2 ms), as a service between requests would: the
      // shipper's answers and next batches wait for it, and the log service would sit idle meanwhile.
      while (shipper.buffered > highWater) await sleep(1);
      await yieldNow();
    }
  }
  const loggedAt = performance.now();
  if (config.waitForDisk) {
    while ((await linesWritten(config.url)) < base + config.lines) await sleep(5);
  } else {
    while (shipper.buffered > 0) await sleep(10);
  }
  const doneAt = performance.now();
  const cpu = process.cpuUsage(cpu0);
  process.stderr.write(`client ${config.tag}: ${((cpu.user + cpu.system) / 1e6).toFixed(2)} CPU-s, logged in ${((loggedAt - t0) / 1000).toFixed(2)} s, on disk after ${((doneAt - t0) / 1000).toFixed(2)} s, ${shipper.posts} posts\n`);
  const result: ClientResult = {
    tag: config.tag,
    lines: config.lines,
    seconds: (doneAt - t0) / 1000,
    loggedSeconds: (loggedAt - t0) / 1000,
    posts: shipper.posts,
    retries: shipper.retries,
    throttled: shipper.throttled,
    dropped: shipper.dropped,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  await shipper.close();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

function client(config: ClientConfig): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SELF, 'client', JSON.stringify(config)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as ClientResult);
      else reject(new Error(`bench client ${config.tag} exited ${code}: ${out}`));
    });
  });
}

/** Samples a process's CPU and RSS every 100 ms. */
class Sampler {
  peakRssMB = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
    this.sample();
  }
  sample(): { cpuSeconds: number; rssMB: number } {
    const stats = procStats(this.pid);
    this.peakRssMB = Math.max(this.peakRssMB, stats.rssMB);
    return stats;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** Distinct i per tag on disk, and lines seen more than once. */
function onDisk(dataDir: string): Map<string, { distinct: Set<number>; duplicates: number }> {
  const byTag = new Map<string, { distinct: Set<number>; duplicates: number }>();
  for (const name of fs.readdirSync(dataDir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of fs.readFileSync(path.join(dataDir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const entry = JSON.parse(line) as { tag?: string; i?: number };
      if (entry.tag === undefined || entry.i === undefined) continue;
      let tag = byTag.get(entry.tag);
      if (!tag) byTag.set(entry.tag, (tag = { distinct: new Set(), duplicates: 0 }));
      if (tag.distinct.has(entry.i)) tag.duplicates++;
      else tag.distinct.add(entry.i);
    }
  }
  return byTag;
}

async function startLog(env: Record<string, string>): Promise<Proc & { dataDir: string }> {
  const dataDir = tempDir('bench-logs-');
  // Started as the launcher starts it (platform/services.ts), node options included.
  const proc = await startProcess('cmd/logservice.ts', {
    nodeArgs: platformService('logservice').nodeOptions,
    env: { REGISTRY_URL: 'http://127.0.0.1:9', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
  });
  return Object.assign(proc, { dataDir });
}

async function metricSum(url: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(label)) sum += Number(line.split(' ').pop());
  return sum;
}

/** A JSON array of 1,000 lines, each numbered (tag, i) so it can be found on disk. */
function arrayBody(tag: string, from: number, lines: number): string {
  const time = new Date().toISOString();
  const parts = new Array<string>(lines);
  for (let k = 0; k < lines; k++) {
    const i = from + k;
    parts[k] = `{"time":"${time}","level":"info","service":"bench-arrays","message":"bench ${tag} line ${i}: the quick brown fox jumps over the lazy dog","tag":"${tag}","i":${i}}`;
  }
  return `[${parts.join(',')}]`;
}

/** `clients` loops, each posting `posts` arrays of `lines` lines, the next as soon as the last is answered 202. */
async function postArrays(url: string, tagPrefix: string, clients: number, posts: number, lines: number): Promise<{ seconds: number; tags: string[] }> {
  const tags = Array.from({ length: clients }, (_, c) => `${tagPrefix}-${c}`);
  const t0 = performance.now();
  await Promise.all(
    tags.map(async (tag) => {
      for (let p = 0; p < posts; p++) {
        const res = await fetch(`${url}/log`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-log-batch-id': `${tag}-${p}` },
          body: arrayBody(tag, p * lines, lines),
          signal: AbortSignal.timeout(30_000),
        });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`POST /log answered ${res.status} to ${tag} post ${p}`);
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, tags };
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const batchedLines = Number(process.env.BENCH_LOG_LINES ?? 150_000);
  const perLineLines = Number(process.env.BENCH_LOG_PER_LINE ?? 2000);
  const pressureClients = 4;
  const pressureLines = 50_000;

  const loadBefore = os.loadavg()[0];
  // Phases 1 and 2: one log service, default settings.
  const log = await startLog({});
  const sampler = new Sampler(log.child.pid!);
  // Alternating rounds, so a burst of load from elsewhere hits both modes alike; medians are reported.
  const rounds = Number(process.env.BENCH_LOG_ROUNDS ?? 3);
  const batchedRuns: { result: ClientResult; cpu: number }[] = [];
  const perLineRuns: { result: ClientResult; cpu: number }[] = [];
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
  const median = (runs: { result: ClientResult; cpu: number }[]) =>
    [...runs].sort((a, b) => a.result.lines / a.result.seconds - b.result.lines / b.result.seconds)[Math.floor(runs.length / 2)];
  const batchedMedian = median(batchedRuns);
  const perLineMedian = median(perLineRuns);
  const batched = batchedMedian.result;
  const perLine = perLineMedian.result;
  const cpuBatched = batchedMedian.cpu;
  const cpuPerLine = perLineMedian.cpu;
  const disk = onDisk(log.dataDir);
  const peakNormal = sampler.peakRssMB;

  // Phase 3: four clients posting JSON arrays of 1,000 lines, each waiting for its 202 (written and fsynced).
  const arrayClients = 4;
  const arrayLines = 1000;
  const arrayPosts = Number(process.env.BENCH_LOG_ARRAY_POSTS ?? 150);
  const intake = await startLog({});
  const intakeSampler = new Sampler(intake.child.pid!);
  let arrays: { seconds: number; tags: string[] };
  let arraysCpu: number;
  let arraysFsyncs: number;
  try {
    await postArrays(intake.url, 'arrays-warm-up', arrayClients, 30, arrayLines);
    intakeSampler.peakRssMB = 0;
    const before = intakeSampler.sample().cpuSeconds;
    const fsyncsBefore = await metricSum(intake.url, 'log_fsyncs', '');
    arrays = await postArrays(intake.url, 'arrays', arrayClients, arrayPosts, arrayLines);
    arraysCpu = intakeSampler.sample().cpuSeconds - before;
    arraysFsyncs = (await metricSum(intake.url, 'log_fsyncs', '')) - fsyncsBefore;
  } finally {
    intakeSampler.stop();
    await intake.stop();
  }
  const arraysDisk = onDisk(intake.dataDir);
  const arraysTotal = arrayClients * arrayPosts * arrayLines;
  const arraysRate = arraysTotal / arrays.seconds;
  const arraysLost = arrays.tags.reduce((sum, tag) => sum + arrayPosts * arrayLines - (arraysDisk.get(tag)?.distinct.size ?? 0), 0);
  const arraysDupes = arrays.tags.reduce((sum, tag) => sum + (arraysDisk.get(tag)?.duplicates ?? 0), 0);

  // Phase 4: a small write queue and four clients at full speed.
  const queueLimit = 256 * 1024;
  const pressured = await startLog({ LOG_QUEUE_LIMIT: String(queueLimit) });
  const pressureSampler = new Sampler(pressured.child.pid!);
  let pressure: ClientResult[];
  let busy: number;
  let pressureSeconds: number;
  try {
    const t0 = performance.now();
    pressure = await Promise.all(
      Array.from({ length: pressureClients }, (_, c) =>
        client({ url: pressured.url, tag: `pressure-${c}`, lines: pressureLines, shipper: { batchLines: 2000 }, waitForDisk: false }),
      ),
    );
    pressureSeconds = (performance.now() - t0) / 1000;
    busy = await metricSum(pressured.url, 'log_requests_total', 'outcome="busy"');
  } finally {
    pressureSampler.stop();
    await pressured.stop();
  }
  const pressureDisk = onDisk(pressured.dataDir);

  const loadAfter = os.loadavg()[0];
  const rate = (r: ClientResult) => r.lines / r.seconds;
  const ratio = rate(batched) / rate(perLine);
  const lost = (tag: string, lines: number) => lines - (disk.get(tag)?.distinct.size ?? pressureDisk.get(tag)?.distinct.size ?? 0);
  const dupes = (tag: string) => disk.get(tag)?.duplicates ?? pressureDisk.get(tag)?.duplicates ?? 0;
  const runsLost = [...batchedRuns, ...perLineRuns].reduce((sum, r) => sum + lost(r.result.tag, r.result.lines) + dupes(r.result.tag), 0) + arraysLost + arraysDupes;
  const pressureLost = pressure.reduce((sum, r) => sum + lost(r.tag, r.lines), 0);
  const pressureDupes = pressure.reduce((sum, r) => sum + dupes(r.tag), 0);
  const throttled = pressure.reduce((sum, r) => sum + r.throttled, 0);
  const peakRss = Math.max(peakNormal, intakeSampler.peakRssMB, pressureSampler.peakRssMB);
  const check = (ok: boolean) => (ok ? 'met' : '**missed**');

  const body = `
Lines go from \`logger.info\` in one client process (winston with the \`LogShipper\` as its only
transport, default settings) to the log service, which writes them with winston-daily-rotate-file; a
line counts when the log service has written it to the file and fsynced it (what a 202 promises). Every
line is then checked in the files.
Each batched client first logs 30,000 unmeasured lines (and waits for them on disk), so the figure is
the sustained rate once the JIT has compiled the path; it lets its event loop run every 256 lines.
The log service is started as the launcher starts it (\`${platformService('logservice').nodeOptions?.join(' ') ?? ''}\`, see platform/services.ts).
Client CPU per run (main thread and V8's helper threads): ${batchedRuns.map((r) => r.result.cpuSeconds === undefined ? 'n/a' : fmt(r.result.cpuSeconds, 2)).join(', ')} s.
The machine's 1-minute load average was ${fmt(loadBefore, 1)} at the start and ${fmt(loadAfter, 1)} at the end
(2 cores of a shared virtual machine: figures vary by some 15 % from run to run).

| mode | lines | seconds | lines/s | POSTs | log service CPU s | lost | duplicated |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${[...batchedRuns.map((r) => ['batched (1,000 lines or 200 ms, 2 in flight)', r] as const), ...perLineRuns.map((r) => ['one POST per line (reference pattern)', r] as const)]
  .map(([mode, r]) => `| ${mode}, ${r.result.tag} | ${fmt(r.result.lines)} | ${fmt(r.result.seconds, 2)} | ${r === batchedMedian || r === perLineMedian ? `**${fmt(rate(r.result))}**` : fmt(rate(r.result))} | ${fmt(r.result.posts)} | ${fmt(r.cpu, 2)} | ${lost(r.result.tag, r.result.lines)} | ${dupes(r.result.tag)} |`)
  .join('\n')}

Medians (in bold): batched **${fmt(rate(batched))} lines/s**, one POST per line **${fmt(rate(perLine))} lines/s**.

- batched / one-per-line (medians): **${fmt(ratio, 1)}×**
- log service CPU per 100,000 lines: batched ${fmt((cpuBatched / batched.lines) * 100_000, 2)} s, one per line ${fmt((cpuPerLine / perLine.lines) * 100_000, 2)} s
- log service peak RSS in these two phases: ${fmt(peakNormal, 1)} MB

Intake: ${arrayClients} clients (in the benchmark's process) posting JSON arrays of ${fmt(arrayLines)} lines (each with an
\`X-Log-Batch-Id\`), each sending its next array when the last one was answered 202, that is written and fsynced;
after ${fmt(arrayClients * 30)} unmeasured arrays. A fresh log service with the launcher's options.

- **${fmt(arraysRate)} lines/s** taken (${fmt(arraysTotal)} lines in ${fmt(arrays.seconds, 2)} s); ${fmt(arraysFsyncs)} fsyncs for ${fmt(arrayClients * arrayPosts)} arrays
- log service CPU ${fmt(arraysCpu, 2)} s (${fmt((arraysCpu / arraysTotal) * 100_000, 2)} s per 100,000 lines), peak RSS ${fmt(intakeSampler.peakRssMB, 1)} MB
- lines lost: ${arraysLost}, duplicated: ${arraysDupes}

Backpressure: a log service with \`LOG_QUEUE_LIMIT=${queueLimit}\` (256 KiB), ${pressureClients} client processes
logging ${fmt(pressureLines)} lines each at full speed in batches of 2,000 lines:

- 503 answers with Retry-After: ${fmt(busy)} (clients saw ${fmt(throttled)} and waited them out)
- lines lost: ${pressureLost}, duplicated: ${pressureDupes}, dropped by the clients' buffers: ${pressure.reduce((s, r) => s + r.dropped, 0)}
- ${fmt(pressureClients * pressureLines)} lines in ${fmt(pressureSeconds, 1)} s; log service peak RSS ${fmt(pressureSampler.peakRssMB, 1)} MB

| target | figure | |
| --- | --- | --- |
| ≥ 100,000 lines/s batched | ${fmt(rate(batched))} | ${check(rate(batched) >= 100_000)} |
| ≥ 50× one POST per line | ${fmt(ratio, 1)}× | ${check(ratio >= 50)} |
| ≥ 250,000 lines/s taken from 4 clients posting arrays of 1,000 | ${fmt(arraysRate)} | ${check(arraysRate >= 250_000)} |
| log service RSS ≤ 200 MB throughout | ${fmt(peakRss, 1)} MB | ${check(peakRss <= 200)} |
| zero lines lost (or duplicated) | ${runsLost + pressureLost + pressureDupes} | ${check(runsLost + pressureLost + pressureDupes === 0)} |
| 503 + Retry-After when the queue is full | ${fmt(busy)} | ${check(busy > 0 && throttled > 0)} |
`;
  writeReport('logs', 'Log service: end-to-end lines/s, batched vs one POST per line, intake of JSON arrays, backpressure', 'npm run bench:logs', body);
  fs.rmSync(log.dataDir, { recursive: true, force: true });
  fs.rmSync(pressured.dataDir, { recursive: true, force: true });
  fs.rmSync(intake.dataDir, { recursive: true, force: true });
}

if (process.argv[2] === 'client') {
  await runClient(JSON.parse(process.argv[3]) as ClientConfig);
  process.exit(0);
} else {
  await main();
  process.exit(0);
}
