/**
 * Registry benchmark (`npm run bench:registry`), figures to docs/benchmarks.md:
 *   1. registrations/s for 0→1,000 and 9,000→10,000 (10,000 instances, heartbeat URLs served by one load process)
 *   2. one full health sweep of 1,000 instances (registry in this process, so sweep() can be timed)
 *   3. CPU and RSS of a real registry process at steady state: 1,000 instances, 1 s default interval
 *   4. patch latency p50/p99 from a provider's registration to 100 dependents receiving it
 *   5. time from SIGKILL of a provider process to its dependents being told
 *   6. the event stream with 200 watchers, 10 of which never read (bench/registryStream.ts; alone: `tsx bench/registry.ts stream`)
 * The heartbeat and patch endpoints live in a separate load process (this file, run as `load`), so the
 * registry's CPU is its own. Times that cross processes are wall-clock with sub-millisecond precision.
 */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile, procStats, writeReport } from './report.ts';
import { benchStreams } from './registryStream.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// Roles run in child processes: `load` serves every heartbeat and patch endpoint; `victim` is a
// provider to SIGKILL (with `close`, it refuses keep-alive, so only the schedule can find its death).

interface Receipt {
  at: number;
  subscriber: string;
  added: string[];
  removed: string[];
}

function runLoad(): void {
  const receipts: Receipt[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url.endsWith('/heartbeat')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('ok');
      return;
    }
    if (req.method === 'GET' && url === '/_count') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(String(receipts.length));
      return;
    }
    if (req.method === 'GET' && url.startsWith('/_receipts')) {
      const since = Number(new URL(url, 'http://x').searchParams.get('since') ?? 0);
      const body = JSON.stringify({ total: receipts.length, receipts: receipts.slice(since) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = now();
      if (req.method === 'POST' && url.endsWith('/services')) {
        try {
          const patch = JSON.parse(Buffer.concat(chunks).toString()) as { added?: { url: string }[]; removed?: { url: string }[] };
          receipts.push({ at, subscriber: url.slice(0, -'/services'.length), added: (patch.added ?? []).map((e) => e.url), removed: (patch.removed ?? []).map((e) => e.url) });
        } catch {
          // not a patch
        }
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`LOAD http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
  });
}

function runVictim(closeEach: boolean): void {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, closeEach ? { connection: 'close' } : {}).end('ok');
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`VICTIM http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
  });
}

// ---------------------------------------------------------------------------------------------
// The driver.

interface Child {
  child: ChildProcess;
  url: string;
}

/** Spawns a node process and waits for the line `<tag> <url>`; its output is drained (never left to fill a pipe). */
async function spawnNode(args: string[], tag: RegExp, env: Record<string, string> = {}): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let head = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start:\n${head}`)), 60_000);
    const onData = (chunk: Buffer) => {
      if (head.length < 100_000) head += chunk.toString();
      const match = tag.exec(head);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}):\n${head}`)));
  });
  return { child, url };
}

async function startRegistryProcess(env: Record<string, string>): Promise<Child> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-registry-'));
  return spawnNode(['cmd/registry.ts'], /registry listening on (http:\/\/\S+)/, { PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env });
}

async function stop(proc: Child): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function call(method: string, url: string, body?: unknown): Promise<{ status: number; data: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method, agent, timeout: 30_000, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let data: any = text;
          try {
            data = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, data });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function registration(load: string, key: string, name: string, requiredServices: string[] = []) {
  const url = `${load}/${key}`;
  return { serviceName: name, serviceURL: url, heartbeatURL: `${url}/heartbeat`, serviceUpdateURL: `${url}/services`, requiredServices };
}

async function register(registry: string, body: unknown): Promise<string> {
  const { status, data } = await call('POST', `${registry}/services`, body);
  if (status !== 200) throw new Error(`registration answered ${status}: ${JSON.stringify(data)}`);
  return data.instanceId as string;
}

/**
 * Registers `count` instances with `concurrency` in flight. `onCompleted(k)` runs after the k-th
 * completion (in completion order); returns the time of each completion.
 */
async function registerMany(
  registry: string,
  load: string,
  from: number,
  count: number,
  concurrency: number,
  name: (i: number) => string,
  onCompleted?: (k: number) => void,
): Promise<number[]> {
  const done: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      await register(registry, registration(load, `i/${from + i}`, name(from + i)));
      done.push(now());
      onCompleted?.(done.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return done;
}

/** How many patches the load process has received (cheap: it doesn't serialise them). */
async function receiptCount(load: string): Promise<number> {
  return Number((await call('GET', `${load}/_count`)).data);
}

async function receiptsSince(load: string, since: number): Promise<{ total: number; receipts: Receipt[] }> {
  return (await call('GET', `${load}/_receipts?since=${since}`)).data;
}

/** Polls the load process until `predicate` holds for the receipts since `since`. */
async function waitReceipts(load: string, since: number, predicate: (r: Receipt[]) => boolean, timeoutMs = 30_000): Promise<Receipt[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { receipts } = await receiptsSince(load, since);
    if (predicate(receipts)) return receipts;
    if (Date.now() > deadline) throw new Error(`timed out waiting for patches (${receipts.length} so far)`);
    await sleep(20);
  }
}

const ms = (v: number) => `${v.toFixed(1)} ms`;
const median = (values: number[]) => percentile(values, 50);

interface RegistrationFigures {
  first: number;
  last: number;
  total: number;
  elapsedS: number;
  interval: number;
  /** Registry CPU per registration (µs) in the first and last blocks. */
  firstCpuUs: number;
  lastCpuUs: number;
}

/** Registrations (then deregistrations) before the measured blocks. */
const WARM_UP_REGISTRATIONS = 6000;

async function benchRegistrations(load: string): Promise<RegistrationFigures> {
  // A 30 s interval: this phase times the registration path; checking cost is phase 3's subject.
  const interval = 30_000;
  const registry = await startRegistryProcess({ HEARTBEAT_INTERVAL_MS: String(interval) });
  try {
    // Warm-up: 6,000 throwaway registrations, then deregistered, so the JIT has compiled the path and
    // the registry holds 0 instances again when the measured 0→1,000 block starts.
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < WARM_UP_REGISTRATIONS) {
          const i = next++;
          ids.push(await register(registry.url, registration(load, `warm/${i}`, 'warm-up')));
        }
      }),
    );
    for (const id of ids) await call('DELETE', `${registry.url}/services/${id}`);
    const { data: empty } = await call('GET', `${registry.url}/health`);
    if (empty.instances !== 0) throw new Error(`the warm-up left ${empty.instances} instances`);
    await sleep(1000);
    const cpu = new Map<number, number>([[0, procStats(registry.child.pid!).cpuSeconds]]);
    const started = now();
    const done = await registerMany(registry.url, load, 0, 10_000, 32, (i) => `svc-${i % 100}`, (k) => {
      if (k === 1000 || k === 9000 || k === 10_000) cpu.set(k, procStats(registry.child.pid!).cpuSeconds);
    });
    const elapsedS = (now() - started) / 1000;
    const rate = (a: number, b: number) => (b - a) / ((done[b - 1] - (a === 0 ? started : done[a - 1])) / 1000);
    const cpuUs = (a: number, b: number) => ((cpu.get(b)! - cpu.get(a)!) / (b - a)) * 1e6;
    const { data } = await call('GET', `${registry.url}/health`);
    if (data.instances !== 10_000) throw new Error(`registry holds ${data.instances} instances, not 10,000`);
    return {
      first: rate(0, 1000),
      last: rate(9000, 10_000),
      total: 10_000 / elapsedS,
      elapsedS,
      interval,
      firstCpuUs: cpuUs(0, 1000),
      lastCpuUs: cpuUs(9000, 10_000),
    };
  } finally {
    await stop(registry);
  }
}

async function benchSweep(load: string): Promise<{ cold: number; warm: number[]; warmCpu: number[] }> {
  const { RegistryServer } = await import('../registry/server.ts');
  const { registryDefaults } = await import('../registry/config.ts');
  const { createLogger } = await import('../shared/logger.ts');
  const server = new RegistryServer({
    ...registryDefaults,
    port: 0,
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sweep-')),
    heartbeatIntervalMs: 3_600_000,
    logger: createLogger('registry', { level: 'warn' }),
  });
  await server.start();
  try {
    await registerMany(server.url, load, 20_000, 1000, 32, () => 'swept');
    let started = performance.now();
    await server.sweep();
    const cold = performance.now() - started;
    const warm: number[] = [];
    const warmCpu: number[] = [];
    for (let i = 0; i < 5; i++) {
      const cpu = process.cpuUsage();
      started = performance.now();
      await server.sweep();
      warm.push(performance.now() - started);
      const used = process.cpuUsage(cpu);
      warmCpu.push((used.user + used.system) / 1000);
    }
    const failing = [...server.registry.all()].filter((r) => r.consecutiveFailures > 0).length;
    if (failing) throw new Error(`${failing} checks failed during the sweep`);
    return { cold, warm, warmCpu };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const load = await spawnNode([SELF, 'load'], /LOAD (http:\/\/\S+)/);
  const lines: string[] = [];
  const log = (line: string) => process.stdout.write(`${line}\n`);
  try {
    // 1. Registration rate.
    log('registering 10,000 instances…');
    const reg = await benchRegistrations(load.url);
    log(`  0→1,000: ${reg.first.toFixed(0)}/s (${reg.firstCpuUs.toFixed(0)} µs CPU each), 9,000→10,000: ${reg.last.toFixed(0)}/s (${reg.lastCpuUs.toFixed(0)} µs CPU each)`);

    // 2. One sweep of 1,000.
    log('sweeping 1,000 instances…');
    const sweep = await benchSweep(load.url);
    log(`  cold ${ms(sweep.cold)}, warm median ${ms(median(sweep.warm))} (${ms(median(sweep.warmCpu))} of registry CPU)`);

    // 3-5. A real registry at the defaults.
    const registry = await startRegistryProcess({});
    const pid = registry.child.pid!;
    try {
      log('steady state with 1,000 instances at the 1 s default…');
      await registerMany(registry.url, load.url, 30_000, 1000, 32, (i) => `steady-${i % 50}`);
      await sleep(5000);
      const before = procStats(pid);
      const windowS = 15;
      const t0 = now();
      await sleep(windowS * 1000);
      const after = procStats(pid);
      const cpuPct = ((after.cpuSeconds - before.cpuSeconds) / ((now() - t0) / 1000)) * 100;
      const checks = await call('GET', `${registry.url}/metrics`);
      const okChecks = /registry_checks_total\{result="ok"[^}]*\} (\d+)/.exec(checks.data)?.[1];
      log(`  CPU ${cpuPct.toFixed(1)} % of one core, RSS ${after.rssMB.toFixed(0)} MB, ${okChecks} checks so far`);

      log('patch latency to 100 dependents…');
      const dependents = [];
      for (let d = 0; d < 100; d++) dependents.push(registration(load.url, `d/${d}`, 'dependent', ['target', 'victim']));
      for (const body of dependents) await register(registry.url, body);
      await sleep(500);
      const latencies: number[] = [];
      const roundMax: number[] = [];
      const rounds = 30;
      // Ten unmeasured rounds first: they open the connections to the 100 dependents and let the JIT
      // compile the notifier's path (each round is only 100 sends; the first few are several times slower).
      const warmUpRounds = 10;
      for (let round = -warmUpRounds; round < rounds; round++) {
        const since = await receiptCount(load.url);
        const provider = registration(load.url, `p/${round + warmUpRounds}`, 'target');
        const started = now();
        const id = await register(registry.url, provider);
        const received = await waitReceipts(load.url, since, (r) => r.filter((x) => x.added.includes(provider.serviceURL)).length >= 100);
        const these = received.filter((r) => r.added.includes(provider.serviceURL)).map((r) => r.at - started);
        if (round >= 0) {
          latencies.push(...these);
          roundMax.push(Math.max(...these));
        }
        const sinceRemoval = await receiptCount(load.url);
        await call('DELETE', `${registry.url}/services/${id}`);
        await waitReceipts(load.url, sinceRemoval, (r) => r.filter((x) => x.removed.includes(provider.serviceURL)).length >= 100);
      }
      const p50 = percentile(latencies, 50);
      const p99 = percentile(latencies, 99);
      log(`  ${latencies.length} deliveries: p50 ${ms(p50)}, p99 ${ms(p99)}, max ${ms(Math.max(...latencies))}; slowest per round: ${roundMax.map((v) => v.toFixed(0)).join(' ')}`);

      log('SIGKILL of a provider → dependents told…');
      const crash = async (closeEach: boolean, rounds: number) => {
        const first: number[] = [];
        const last: number[] = [];
        for (let round = 0; round < rounds; round++) {
          const victim = await spawnNode([SELF, 'victim', closeEach ? 'close' : 'keep-alive'], /VICTIM (http:\/\/\S+)/);
          const body = { serviceName: 'victim', serviceURL: victim.url, heartbeatURL: `${victim.url}/heartbeat` };
          const since = await receiptCount(load.url);
          const id = await register(registry.url, body);
          await waitReceipts(load.url, since, (r) => r.filter((x) => x.added.includes(victim.url)).length >= 100);
          await sleep(1500 + Math.random() * 1000); // a random phase against the check schedule
          const sinceKill = await receiptCount(load.url);
          const killedAt = now();
          victim.child.kill('SIGKILL');
          const told = (await waitReceipts(load.url, sinceKill, (r) => r.filter((x) => x.removed.includes(victim.url)).length >= 100, 15_000))
            .filter((x) => x.removed.includes(victim.url))
            .map((x) => x.at - killedAt);
          first.push(Math.min(...told));
          last.push(Math.max(...told));
          await call('DELETE', `${registry.url}/services/${id}`);
        }
        return { first, last };
      };
      const keepAlive = await crash(false, 10);
      log(`  keep-alive heartbeats: last dependent told after median ${ms(median(keepAlive.last))}, max ${ms(Math.max(...keepAlive.last))}`);
      const scheduled = await crash(true, 10);
      log(`  no pooled connection: last dependent told after median ${ms(median(scheduled.last))}, max ${ms(Math.max(...scheduled.last))}`);

      const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
      lines.push(
        '| measurement | figure | target | |',
        '| --- | --- | --- | --- |',
        `| load average when the benchmark ended | ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} (2 cores of a shared virtual machine) | | |`,
        `| registrations/s, 0→1,000 | ${reg.first.toFixed(0)} | ≥ 3,000 | ${verdict(reg.first >= 3000)} |`,
        `| registrations/s, 9,000→10,000 | ${reg.last.toFixed(0)} | ≥ 3,000, no decline | ${verdict(reg.last >= 3000 && reg.last >= reg.first * 0.9)} |`,
        `| registrations/s, all 10,000 | ${reg.total.toFixed(0)} (${reg.elapsedS.toFixed(1)} s) | | |`,
        `| registry CPU per registration, 0→1,000 / 9,000→10,000 | ${reg.firstCpuUs.toFixed(0)} µs / ${reg.lastCpuUs.toFixed(0)} µs (one core's worth: ${(1e6 / reg.firstCpuUs).toFixed(0)}/s and ${(1e6 / reg.lastCpuUs).toFixed(0)}/s) | | |`,
        `| one health sweep of 1,000 instances | ${ms(median(sweep.warm))} (median of 5, using ${ms(median(sweep.warmCpu))} of CPU; first, on new connections: ${ms(sweep.cold)}) | < 300 ms | ${verdict(median(sweep.warm) < 300)} |`,
        `| registry CPU at steady state, 1,000 instances, 1 s interval | ${cpuPct.toFixed(1)} % of one core (${windowS} s window) | ≤ 25 % | ${verdict(cpuPct <= 25)} |`,
        `| registry RSS at steady state | ${after.rssMB.toFixed(0)} MB | ≤ 150 MB | ${verdict(after.rssMB <= 150)} |`,
        `| patch latency, registration → 100 dependents | p50 ${ms(p50)}, p99 ${ms(p99)} (${latencies.length} deliveries, ${rounds} rounds after ${warmUpRounds} warm-up rounds) | p99 < 20 ms | ${verdict(p99 < 20)} |`,
        `| SIGKILL → all 100 dependents told (keep-alive heartbeats) | median ${ms(median(keepAlive.last))}, max ${ms(Math.max(...keepAlive.last))} (10 kills) | ≤ 1.2 s | ${verdict(Math.max(...keepAlive.last) <= 1200)} |`,
        `| SIGKILL → all told, provider without keep-alive (schedule only) | median ${ms(median(scheduled.last))}, max ${ms(Math.max(...scheduled.last))} (10 kills) | ≤ 1.2 s | ${verdict(Math.max(...scheduled.last) <= 1200)} |`,
        '',
        'How it was measured:',
        `- One load process (this script, run as \`load\`) serves every heartbeatURL and serviceUpdateURL, so the registry's CPU is its own. Registrations are sent 32 at a time over keep-alive connections.`,
        `- Registration rate: a real registry process; the rate of a block is 1,000 divided by the time from the end of the previous block to the end of this one. Before it, ${WARM_UP_REGISTRATIONS.toLocaleString('en-US')} throwaway registrations warm the code up and are deregistered again (a cold process spends several times more CPU on its first thousand calls while the JIT compiles; after 2,000 the first measured block still ran at 1,800-2,700/s for its first 500 and 3,400-6,500/s after, so V8 was still optimising). The heartbeat interval is ${reg.interval / 1000} s in this phase, so it times the registration path (validation, indexes, store, log line) rather than 10,000 checks a second, which two shared cores cannot serve next to the load process; checking cost is measured at steady state.`,
        '- Sweep: the registry runs in this process so that `RegistryServer.sweep()` can be timed: 1,000 GETs, 128 in flight, through the same keep-alive agent the scheduler uses.',
        `- Steady state: a real registry process at the defaults (1 s interval, 1 s timeout), 1,000 instances, measured from /proc over ${windowS} s after 5 s of settling.`,
        '- Patch latency: 100 dependents require `target`; each round registers a new `target` and times, from just before the POST, the arrival of the added patch at each dependent (wall clock shared by both processes); then deregisters it and waits for the removals.',
        '- Crash detection: a provider process is registered, left alone for 1.5-2.5 s (a random phase against the check schedule), then SIGKILLed; the figure is the time until the last of the 100 dependents has its removed patch. With keep-alive heartbeats (every service built on shared/), the dying process closes the registry\'s pooled connection and the registry checks that instance at once (refused → confirmed → down). The second row answers every heartbeat with `Connection: close`, so only the scheduled check (≤ 1 interval away) can find the death.',
      );
    } finally {
      await stop(registry);
    }
  } finally {
    load.child.kill('SIGKILL');
    agent.destroy();
  }
  writeReport('registry', 'Registry', 'npm run bench:registry', lines.join('\n'));
  await streamSection();
}

/** 6. The event stream, in its own report section (so it can be run alone). */
async function streamSection(): Promise<void> {
  const load = await spawnNode([SELF, 'load'], /LOAD (http:\/\/\S+)/);
  try {
    const log = (line: string) => process.stdout.write(`${line}\n`);
    const lines = await benchStreams({ load: load.url, startRegistry: startRegistryProcess, stop, spawnNode, registerMany, call, log });
    writeReport('registry-stream', 'Registry event stream', 'npm run bench:registry', lines.join('\n'));
  } finally {
    load.child.kill('SIGKILL');
    agent.destroy();
  }
}

const role = process.argv[2];
if (role === 'load') runLoad();
else if (role === 'victim') runVictim(process.argv[3] === 'close');
else
  await (role === 'stream' ? streamSection() : main()).catch((err) => {
    process.stderr.write(`bench:registry failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
