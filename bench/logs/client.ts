/**
 * The client role (bench/logs.ts run as `client`): one logger, one LogShipper as its only transport
 * (no console: the figure is the shipping path, not a terminal's speed), N lines as fast as the
 * shipper takes them; and the driver's side that runs it as a child process and reads its result.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep, setImmediate as yieldNow } from 'node:timers/promises';
import { ROOT } from '../../harness/processes.ts';
import { createLogger } from '../../shared/logger.ts';
import { ProviderTable } from '../../shared/providers.ts';
import { LogShipper } from '../../logservice/shipper.ts';
import type { LogShipperOptions } from '../../logservice/shipperConfig.ts';

/** The script whose `client` sub-command runs the role. */
const SCRIPT = path.join(ROOT, 'bench', 'logs.ts');

export interface ClientConfig {
  url: string;
  tag: string;
  lines: number;
  shipper: Partial<LogShipperOptions>;
  /** Wait for this many more lines on disk (single-client phases) or only for the acks. */
  waitForDisk: boolean;
  /** Lines logged (and waited for on disk) before the clock starts, so the JIT has compiled the path: the figure is the sustained rate. */
  warmUpLines?: number;
}

export interface ClientResult {
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

export async function runClient(config: ClientConfig): Promise<void> {
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

/** Runs the client role as a child process; resolves with its result. */
export function client(config: ClientConfig): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, 'client', JSON.stringify(config)], {
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
