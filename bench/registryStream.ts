/**
 * The registry's event stream under load (a section of `npm run bench:registry`; alone:
 * `tsx bench/registry.ts stream`): 5,000 instances checked every second, 200 watchers of
 * GET /services/stream of which 10 never read, 20 instances that go down and come back.
 * Registry RSS growth, GET /services latency, and whether every reading watcher saw every change.
 * The watchers and the flapping instances live in their own process (this file, run as `watchers`).
 */
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { readEventStream } from '../shared/sse.ts';
import { percentile, procStats } from './report.ts';

const SELF = fileURLToPath(import.meta.url);
const INSTANCES = 5000;
const WATCHERS = 200;
const NEVER_READ = 10;
const FLAPPERS = 20;
const ROUNDS = 3;

// ---------------------------------------------------------------------------------------------
// The `watchers` role: readers through shared/sse.ts (as `services watch` reads), raw sockets that
// never read, and the flapping instances, with a control endpoint for the driver.

interface ReaderState {
  /** Per flapper instance id, the state events seen, in order. */
  seen: Record<string, string[]>;
  eventBytes: number;
  snapshots: number;
}

async function runWatchers(registryUrl: string): Promise<void> {
  const flappers: { id: string; server: http.Server; port: number }[] = [];
  for (let i = 0; i < FLAPPERS; i++) {
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const url = `http://127.0.0.1:${port}`;
    const answer = await fetch(`${registryUrl}/services`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ serviceName: 'flapper', serviceURL: url, heartbeatURL: `${url}/heartbeat` }),
      signal: AbortSignal.timeout(30_000),
    });
    flappers.push({ id: ((await answer.json()) as { instanceId: string }).instanceId, server, port });
  }
  const ids = new Set(flappers.map((f) => f.id));
  const readers: ReaderState[] = [];
  const abort = new AbortController();
  for (let i = 0; i < WATCHERS - NEVER_READ; i++) {
    const state: ReaderState = { seen: {}, eventBytes: 0, snapshots: 0 };
    readers.push(state);
    void readEventStream(
      `${registryUrl}/services/stream`,
      (event) => {
        state.eventBytes += event.data.length;
        if (event.event === 'snapshot') state.snapshots++;
        if (event.event !== 'up' && event.event !== 'down') return;
        const id = (JSON.parse(event.data) as { instance: { instanceId: string } }).instance.instanceId;
        if (ids.has(id)) (state.seen[id] ??= []).push(event.event);
      },
      abort.signal,
      30_000,
    ).catch((err) => process.stderr.write(`a reader stopped: ${(err as Error).message}\n`));
  }
  const { hostname, port } = new URL(registryUrl);
  const neverRead = Array.from({ length: NEVER_READ }, () => {
    const socket = net.connect(Number(port), hostname);
    socket.write(`GET /services/stream HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
    socket.on('error', () => {}); // cut off and destroyed by the registry: expected
    return socket; // no 'data' listener: it never takes a byte
  });
  const control = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/state') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ flappers: [...ids], readers, neverRead: neverRead.length }));
      return;
    }
    if (url.pathname === '/flap') {
      const down = url.searchParams.get('down') === '1';
      void Promise.all(
        flappers.map((f) =>
          down
            ? new Promise<void>((resolve) => {
                f.server.close(() => resolve());
                f.server.closeAllConnections();
              })
            : new Promise<void>((resolve) => f.server.listen(f.port, '127.0.0.1', resolve)),
        ),
      ).then(() => res.writeHead(200).end('{}'));
      return;
    }
    res.writeHead(404).end();
  });
  control.listen(0, '127.0.0.1', () => process.stdout.write(`WATCHERS http://127.0.0.1:${(control.address() as net.AddressInfo).port}\n`));
}

// ---------------------------------------------------------------------------------------------
// The driver's side.

interface Child {
  child: import('node:child_process').ChildProcess;
  url: string;
}

/** What the section needs from bench/registry.ts. */
export interface StreamBenchDeps {
  load: string;
  startRegistry(env: Record<string, string>): Promise<Child>;
  stop(proc: Child): Promise<void>;
  spawnNode(args: string[], tag: RegExp): Promise<Child>;
  registerMany(registry: string, load: string, from: number, count: number, concurrency: number, name: (i: number) => string): Promise<unknown>;
  call(method: string, url: string, body?: unknown): Promise<{ status: number; data: any }>;
  log(line: string): void;
}

async function metric(deps: StreamBenchDeps, registry: string, name: string): Promise<number> {
  const text = (await deps.call('GET', `${registry}/metrics`)).data as string;
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** Runs the section; gives the lines of its report. */
export async function benchStreams(deps: StreamBenchDeps): Promise<string[]> {
  const registry = await deps.startRegistry({});
  const pid = registry.child.pid!;
  let watchers: Child | undefined;
  try {
    deps.log(`stream: ${INSTANCES.toLocaleString('en-US')} instances at the 1 s default…`);
    await deps.registerMany(registry.url, deps.load, 40_000, INSTANCES, 32, (i) => `watched-${i % 100}`);
    await sleep(5000);
    // Before any watcher: the RSS to grow from, and GET /services on this machine without the stream.
    const baselines: number[] = [];
    const quietMs: number[] = [];
    const quietCpu = cpuMeter(pid);
    for (let t0 = Date.now(); Date.now() - t0 < 5000; await sleep(100)) {
      quietMs.push(await timeGet(`${registry.url}/services`));
      baselines.push(procStats(pid).rssMB);
    }
    const baseline = percentile(baselines, 50);
    const quietCpuPct = quietCpu();
    let peak = baseline;
    let sampling = true;
    const sampler = (async () => {
      for (; sampling; await sleep(200)) peak = Math.max(peak, procStats(pid).rssMB);
    })();

    deps.log(`  ${WATCHERS} watchers (${NEVER_READ} never read), ${FLAPPERS} instances going down and up ${ROUNDS} times…`);
    const started = Date.now();
    watchers = await deps.spawnNode([SELF, 'watchers', registry.url], /WATCHERS (http:\/\/\S+)/);
    const state = async () => (await deps.call('GET', `${watchers!.url}/state`)).data as { flappers: string[]; readers: ReaderState[] };
    await waitUntil(async () => (await state()).readers.every((r) => r.snapshots >= 1), 'every reader to have its snapshot', 120_000);
    const listingMs: number[] = [];
    const watchedCpu = cpuMeter(pid);
    const watchersCpu = cpuMeter(watchers.child.pid!);
    let probing = true;
    const probe = (async () => {
      for (; probing; await sleep(100)) {
        listingMs.push(await timeGet(`${registry.url}/services`));
      }
    })();
    const seenAll = (s: { flappers: string[]; readers: ReaderState[] }, count: number) =>
      s.readers.every((r) => s.flappers.every((id) => (r.seen[id]?.length ?? 0) >= count));
    for (let round = 0; round < ROUNDS; round++) {
      await deps.call('POST', `${watchers.url}/flap?down=1`);
      await waitUntil(async () => seenAll(await state(), 2 * round + 1), `down #${round + 1} at every reader`, 30_000);
      await deps.call('POST', `${watchers.url}/flap?down=0`);
      await waitUntil(async () => seenAll(await state(), 2 * round + 2), `up #${round + 1} at every reader`, 30_000);
    }
    // At least 20 s with every watcher open, so the routine summaries' cost is in the figures.
    await sleep(Math.max(0, 20_000 - (Date.now() - started)));
    probing = false;
    await probe;
    const watchedCpuPct = watchedCpu();
    const watchersCpuPct = watchersCpu();
    sampling = false;
    await sampler;
    const final = await state();
    const expected = Array.from({ length: ROUNDS }, () => ['down', 'up']).flat().join(',');
    const complete = final.readers.filter((r) => final.flappers.every((id) => (r.seen[id] ?? []).join(',') === expected)).length;
    const cutOff = await metric(deps, registry.url, 'registry_stream_disconnects_total');
    const queuedMB = (await metric(deps, registry.url, 'registry_stream_queued_bytes')) / 2 ** 20;
    const open = await metric(deps, registry.url, 'registry_stream_clients');
    const windowS = (Date.now() - started) / 1000;
    const mbPerReader = final.readers.reduce((n, r) => n + r.eventBytes, 0) / final.readers.length / 2 ** 20;
    const growth = peak - baseline;
    const p99 = percentile(listingMs, 99);
    deps.log(`  RSS ${baseline.toFixed(0)} → peak ${peak.toFixed(0)} MB; GET /services p50 ${percentile(listingMs, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; ${complete}/${final.readers.length} readers saw every change; ${cutOff} cut off`);
    const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
    const readers = final.readers.length;
    return [
      '| measurement | figure | target | |',
      '| --- | --- | --- | --- |',
      `| load average when the section ended | ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} (2 cores of a shared virtual machine) | | |`,
      `| registry RSS growth with ${WATCHERS} watchers (${NEVER_READ} never read), ${INSTANCES.toLocaleString('en-US')} instances | ${growth.toFixed(0)} MB (${baseline.toFixed(0)} → peak ${peak.toFixed(0)} MB over ${windowS.toFixed(0)} s) | ≤ 100 MB | ${verdict(growth <= 100)} |`,
      `| GET /services (${INSTANCES + FLAPPERS} instances) while they watch | p50 ${percentile(listingMs, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (${listingMs.length} requests) | p99 ≤ 200 ms | ${verdict(p99 <= 200)} |`,
      `| GET /services (${INSTANCES} instances) before any watcher, for comparison | p50 ${percentile(quietMs, 50).toFixed(1)} ms, p99 ${percentile(quietMs, 99).toFixed(1)} ms (${quietMs.length} requests) | | |`,
      `| reading watchers that saw every state change (${FLAPPERS} instances × ${ROUNDS} downs and ups, in order) | ${complete} of ${readers} | all | ${verdict(complete === readers)} |`,
      `| watchers cut off for not reading / open at the end / bytes they left unread | ${cutOff} / ${open} / ${queuedMB.toFixed(1)} MB | each ≤ its snapshot + 1 MiB | |`,
      `| registry CPU before the watchers / while they watch (the watchers' process) | ${quietCpuPct.toFixed(0)} % / ${watchedCpuPct.toFixed(0)} % of one core (${watchersCpuPct.toFixed(0)} %) | | |`,
      `| event data per reading watcher | ${mbPerReader.toFixed(1)} MB in ${windowS.toFixed(0)} s (snapshot included) | | |`,
      '',
      'How it was measured:',
      `- A real registry process at the defaults (1 s interval, 1 s timeout) with ${INSTANCES.toLocaleString('en-US')} instances served by the load process; its RSS is read from /proc every 200 ms, against the median of the 5 s before the watchers connect (while GET /services is timed alone).`,
      "- A watcher that never reads holds at most its snapshot and 1 MiB of later events in the registry before it is cut off (its snapshot bytes are shared with the watchers that connected with it). When the stream carries less than that (plus what the kernel's socket buffers take) in the window, as here, it is still open at the end; the row above gives the bytes the registry itself still held for all watchers (each counted).",
      `- A second process (this section's \`watchers\` role) opens ${WATCHERS - NEVER_READ} readers through shared/sse.ts (the client \`services watch\` uses) and ${NEVER_READ} raw sockets that send the request and never read a byte, and serves ${FLAPPERS} more instances whose servers close (the registry finds the refusal at once) and come back on the same port, ${ROUNDS} times; each round waits until every reader has seen the change. GET /services is timed from the driver every 100 ms meanwhile, for at least 20 s.`,
      '- Before this change (issue #11), 200 such watchers took the registry from 163 MB to 5,983 MB: each got every checked instance once a second, and nothing capped what a watcher left unread.',
    ];
  } finally {
    if (watchers) watchers.child.kill('SIGKILL');
    agent.destroy();
    await deps.stop(registry);
  }
}

const agent = new http.Agent({ keepAlive: true });

/** Starts measuring a process's CPU; the function returns the % of one core used since. */
function cpuMeter(pid: number): () => number {
  const cpu0 = procStats(pid).cpuSeconds;
  const t0 = performance.now();
  return () => ((procStats(pid).cpuSeconds - cpu0) / ((performance.now() - t0) / 1000)) * 100;
}

/** Milliseconds from sending a GET to the last byte of a 200 (the body is not parsed, so the figure is the registry's). */
function timeGet(url: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`GET ${url} answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: GET ${url}`)));
    req.on('error', reject);
  });
}

async function waitUntil(predicate: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

if (process.argv[1] === SELF && process.argv[2] === 'watchers') await runWatchers(process.argv[3]);
