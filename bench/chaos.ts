/**
 * The chaos run (npm run chaos): the whole platform on fixed, non-default ports with two workers,
 * under load (300 images of mixed sizes and every op, 100,000 log lines through the batching
 * shipper, 20 dependent services watching the registry), while faults are injected on a seeded
 * schedule: a worker SIGKILLed every few seconds (and a new one started), the master and storage
 * SIGKILLed once and restarted, a worker SIGSTOPped for 10 s, the registry and the log service
 * restarted once. It then checks that nothing was lost, duplicated or wrong, that every watcher
 * agrees with the registry, that the registry did not leak or stall, and how long each fault took
 * to recover from. The report goes to docs/reliability.md; the exit code is 1 if a check failed.
 *
 * Settings (environment): CHAOS_SEED (1), CHAOS_IMAGES (300), CHAOS_LOG_LINES (100000),
 * CHAOS_LOG_RATE (lines/s, 1000), CHAOS_WATCHERS (20), CHAOS_DEADLINE_S (480, the whole run).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, tempDir, alive } from '../harness/processes.ts';
import type { InstanceView } from '../registry/protocol.ts';
import { Managed } from './chaos/cluster.ts';
import { makeImage, resultMismatch, seededRandom, type ChaosImage } from './chaos/images.ts';
import { machine, percentile, procStats, writeReport } from './report.ts';

const SEED = Number(process.env.CHAOS_SEED ?? 1);
const IMAGES = Number(process.env.CHAOS_IMAGES ?? 300);
const LOG_LINES = Number(process.env.CHAOS_LOG_LINES ?? 100_000);
const LOG_RATE = Number(process.env.CHAOS_LOG_RATE ?? 1000);
const WATCHERS = Number(process.env.CHAOS_WATCHERS ?? 20);
const DEADLINE_MS = Number(process.env.CHAOS_DEADLINE_S ?? 480) * 1000;
const SUBMIT_SECONDS = 60;
const FAULTS_UNTIL_S = 85;
const HEARTBEAT = { HEARTBEAT_INTERVAL_MS: '250', HEARTBEAT_TIMEOUT_MS: '500', HEARTBEAT_FAILURES: '3', NOTIFY_TIMEOUT_MS: '1000' };
const WATCHED = ['imagemaster', 'imagestorage', 'imageworker', 'log'];
const REPORT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'reliability.md');

const runStarted = Date.now();
const deadline = runStarted + DEADLINE_MS;
const elapsed = (at = Date.now()) => (at - t0) / 1000;
let t0 = Date.now();
let loadAtStart = NaN;
const say = (line: string) => process.stdout.write(`[chaos ${((Date.now() - runStarted) / 1000).toFixed(1)}s] ${line}\n`);

async function getJson<T = any>(url: string, timeoutMs = 3000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return (await res.json()) as T;
}

/** Polls until fn returns a truthy value, or gives up at the time given (undefined). */
async function until<T>(fn: () => Promise<T> | T, by: number, intervalMs = 200): Promise<T | undefined> {
  while (Date.now() < by) {
    try {
      const value = await fn();
      if (value) return value;
    } catch {
      // not yet
    }
    await sleep(intervalMs);
  }
  return undefined;
}

function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

// ---------------------------------------------------------------- the platform

interface Platform {
  registry: Managed;
  log: Managed;
  storage: Managed;
  master: Managed;
  grades: Managed;
  portal: Managed;
  frontend: Managed;
  logClient: Managed;
  watchers: Managed;
  workers: Managed[];
  runDir: string;
  registryUrl: string;
  logDataDir: string;
}

let workerCount = 0;
function workerProc(registryUrl: string, runDir: string): Managed {
  return new Managed({
    name: `worker-${++workerCount}`,
    entry: 'cmd/worker.ts',
    env: { PORT: '0', REGISTRY_URL: registryUrl, LEASE_TTL_SECONDS: '3', CLAIM_WAIT_MS: '5000' },
    logDir: runDir,
  });
}

async function startPlatform(): Promise<Platform> {
  const runDir = tempDir('chaos-');
  const dir = (name: string) => {
    fs.mkdirSync(path.join(runDir, name), { recursive: true });
    return path.join(runDir, name);
  };
  const ports = { registry: await freePort(), log: await freePort(), storage: await freePort(), master: await freePort(), grades: await freePort(), portal: await freePort(), frontend: await freePort() };
  const registryUrl = `http://127.0.0.1:${ports.registry}`;
  const service = (name: string, entry: string, port: number, env: Record<string, string> = {}) =>
    new Managed({ name, entry, env: { PORT: String(port), REGISTRY_URL: registryUrl, DATA_DIR: dir(`data-${name}`), ...env }, logDir: runDir });
  const logDataDir = path.join(runDir, 'data-logservice');
  const p: Platform = {
    registry: new Managed({ name: 'registry', entry: 'cmd/registry.ts', env: { PORT: String(ports.registry), DATA_DIR: dir('data-registry'), ...HEARTBEAT }, logDir: runDir }),
    log: service('logservice', 'cmd/logservice.ts', ports.log),
    storage: service('storage', 'cmd/storage.ts', ports.storage, { STORAGE_FSYNC: 'false' }),
    // A short task lease, so tasks held by a killed worker come back within seconds rather than 30 s.
    master: service('master', 'cmd/master.ts', ports.master, { LEASE_MS: '5000' }),
    grades: service('grades', 'cmd/grades.ts', ports.grades),
    portal: service('portal', 'cmd/portal.ts', ports.portal),
    frontend: service('frontend', 'cmd/frontend.ts', ports.frontend),
    logClient: new Managed({ name: 'logclient', entry: 'bench/chaos/logClient.ts', env: { PORT: '0', REGISTRY_URL: registryUrl }, logDir: runDir }),
    watchers: new Managed({
      name: 'watchers',
      entry: 'bench/chaos/watchers.ts',
      env: { PORT: '0', REGISTRY_URL: registryUrl, COUNT: String(WATCHERS), REQUIRES: WATCHED.join(','), LOG_LEVEL: 'warn' },
      logDir: runDir,
      ready: /watchers ready (\[.*\])/,
    }),
    workers: [workerProc(registryUrl, runDir), workerProc(registryUrl, runDir)],
    runDir,
    registryUrl,
    logDataDir,
  };
  await p.registry.start();
  await p.log.start();
  await Promise.all([p.storage.start(), p.master.start(), p.grades.start()]);
  await Promise.all([p.portal.start(), p.frontend.start(), ...p.workers.map((w) => w.start())]);
  await Promise.all([p.logClient.start(), p.watchers.start()]);
  return p;
}

/** Every process that should be running now (the SIGSTOPped worker counts). */
function liveProcs(p: Platform): Managed[] {
  return [p.registry, p.log, p.storage, p.master, p.grades, p.portal, p.frontend, p.logClient, p.watchers, ...p.workers].filter((m) => m.running);
}

/** Starts a process, trying again (up to 3 times) if it dies before it is ready: a start-up must not end the run. */
async function startAgain(m: Managed): Promise<Managed> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await m.start();
    } catch (err) {
      if (attempt >= 3 || Date.now() > deadline) throw err;
      say(`${m.name} did not start (${(err as Error).message.split('\n')[0]}); trying again`);
    }
  }
}

async function listing(p: Platform): Promise<InstanceView[]> {
  return (await getJson<{ instances: InstanceView[] }>(`${p.registryUrl}/services`, 2000)).instances;
}

/** Every running process is up in the registry (the watcher process with all its services), and no up instance is a dead process. */
function healthy(p: Platform, instances: InstanceView[], stopped?: Managed): boolean {
  const upByPid = new Map<number, number>();
  for (const i of instances) if (i.state === 'up') upByPid.set(Number(i.metadata.pid), (upByPid.get(Number(i.metadata.pid)) ?? 0) + 1);
  const procs = liveProcs(p).filter((m) => m !== p.registry && m !== stopped);
  for (const m of procs) if ((upByPid.get(m.pid) ?? 0) < (m === p.watchers ? WATCHERS : 1)) return false;
  const livePids = new Set(procs.map((m) => m.pid));
  for (const pid of upByPid.keys()) if (!livePids.has(pid)) return false;
  return true;
}

function watchedUp(instances: InstanceView[]): Record<string, string[]> {
  const map: Record<string, string[]> = Object.fromEntries(WATCHED.map((n) => [n, []]));
  for (const i of instances) if (i.state === 'up' && map[i.serviceName]) map[i.serviceName].push(i.serviceURL);
  for (const n of WATCHED) map[n].sort();
  return map;
}

/** How many watchers' provider tables differ from the registry's listing of up instances. */
async function watcherDisagreements(watcherUrls: string[], instances: InstanceView[]): Promise<{ differing: number; examples: string[] }> {
  const expected = watchedUp(instances);
  const tables = await Promise.all(
    watcherUrls.map((url) => getJson<{ name: string; providers: Record<string, string[]> }>(`${url}/debug/providers`, 3000).catch(() => undefined)),
  );
  let differing = 0;
  const examples: string[] = [];
  tables.forEach((table, k) => {
    const bad = !table
      ? ['no answer']
      : WATCHED.filter((n) => JSON.stringify([...(table.providers[n] ?? [])].sort()) !== JSON.stringify(expected[n])).map(
          (n) => `${n}: has ${JSON.stringify(table.providers[n] ?? [])}, registry ${JSON.stringify(expected[n])}`,
        );
    if (bad.length) {
      differing++;
      if (examples.length < 3) examples.push(`${table?.name ?? watcherUrls[k]}: ${bad.join('; ')}`);
    }
  });
  return { differing, examples };
}

// ---------------------------------------------------------------- the monitor

interface Sample {
  at: number;
  instances?: InstanceView[];
  registryHealthMs?: number;
  counts?: Record<string, number>;
  log?: LogProgress;
  watchersDiffering?: number;
  healthy?: boolean;
}

interface LogProgress {
  total: number;
  emitted: number;
  shipped: number;
  dropped: number;
  rejected: number;
  buffered: number;
  posts: number;
  retries: number;
}

class Monitor {
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

// ---------------------------------------------------------------- the load

interface Submission {
  image: ChaosImage;
  taskId?: number;
  attempts: number;
  /** Failed attempts whose request may have reached the master (reset, timeout, 5xx): a possible duplicate. */
  ambiguous: number;
}

async function submitAll(p: Platform, images: ChaosImage[]): Promise<Submission[]> {
  const subs: Submission[] = images.map((image) => ({ image, attempts: 0, ambiguous: 0 }));
  const gapMs = (SUBMIT_SECONDS * 1000) / images.length;
  await Promise.all(
    subs.map(async (sub, k) => {
      await sleep(k * gapMs);
      while (Date.now() < deadline) {
        sub.attempts++;
        try {
          const res = await fetch(`${p.master.url}/tasks?op=${sub.image.op}`, {
            method: 'POST',
            headers: { 'content-type': 'image/png' },
            body: new Uint8Array(sub.image.png),
            signal: AbortSignal.timeout(15_000),
          });
          const text = await res.text();
          if (res.status === 201) {
            sub.taskId = (JSON.parse(text) as { id: number }).id;
            return;
          }
          if (res.status < 500) throw new Error(`upload ${sub.image.index} refused: ${res.status} ${text}`);
          if (res.status !== 503) sub.ambiguous++;
        } catch (err) {
          if ((err as Error).message.startsWith('upload')) throw err;
          const code = (err as { cause?: { code?: string } }).cause?.code;
          if (code !== 'ECONNREFUSED') sub.ambiguous++;
        }
        await sleep(300);
      }
    }),
  );
  return subs;
}

// ---------------------------------------------------------------- the faults

type FaultKind = 'kill-worker' | 'kill-master' | 'kill-storage' | 'stop-worker' | 'restart-registry' | 'restart-logservice';

interface Fault {
  kind: FaultKind;
  atS: number;
  at?: number;
  victim?: string;
  victimPid?: number;
  replacement?: Managed;
  /** When the replacement process said it listens (or the SIGCONT for a stopped worker). */
  restartedAt?: number;
  backlogBefore?: number;
  logBufferedBefore?: number;
  note?: string;
}

function schedule(random: () => number): Fault[] {
  const faults: Fault[] = [];
  const big: FaultKind[] = ['kill-master', 'kill-storage', 'stop-worker', 'restart-registry', 'restart-logservice'];
  for (let i = big.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [big[i], big[j]] = [big[j], big[i]];
  }
  big.forEach((kind, i) => faults.push({ kind, atS: 10 + i * 15 + random() * 3 }));
  for (let at = 5 + random() * 3; at < FAULTS_UNTIL_S; at += 5 + random() * 4) faults.push({ kind: 'kill-worker', atS: at });
  return faults.sort((a, b) => a.atS - b.atS);
}

function backlog(s: Sample | undefined): number | undefined {
  return s?.counts ? s.counts.pending + s.counts.running : undefined;
}

async function runFaults(p: Platform, monitor: Monitor, faults: Fault[], random: () => number, registryHealth: RegistryHealth): Promise<void> {
  const restarts: Promise<unknown>[] = [];
  for (const fault of faults) {
    await sleep(Math.max(0, t0 + fault.atS * 1000 - Date.now()));
    if (Date.now() > deadline) break;
    fault.at = Date.now();
    const before = monitor.lastBefore(fault.at, (s) => !!s.counts);
    fault.backlogBefore = backlog(before);
    fault.logBufferedBefore = monitor.lastBefore(fault.at, (s) => !!s.log)?.log?.buffered;
    switch (fault.kind) {
      case 'kill-worker': {
        const candidates = p.workers.filter((w) => w.running && w !== monitor.stopped && w.url);
        if (candidates.length === 0) {
          fault.note = 'no worker to kill';
          break;
        }
        const victim = candidates[Math.floor(random() * candidates.length)];
        fault.victim = victim.name;
        fault.victimPid = victim.pid;
        await victim.kill();
        const replacement = workerProc(p.registryUrl, p.runDir);
        fault.replacement = replacement;
        p.workers.push(replacement);
        restarts.push(
          startAgain(replacement).then(
            () => (fault.restartedAt = Date.now()),
            (err: Error) => (fault.note = `the new worker did not start: ${err.message.split('\n')[0]}`),
          ),
        );
        say(`SIGKILL ${victim.name} (pid ${fault.victimPid}); starting ${replacement.name}`);
        break;
      }
      case 'kill-master':
      case 'kill-storage': {
        const victim = fault.kind === 'kill-master' ? p.master : p.storage;
        fault.victim = victim.name;
        fault.victimPid = victim.pid;
        await victim.kill();
        say(`SIGKILL ${victim.name} (pid ${fault.victimPid}); restarting it`);
        await startAgain(victim);
        fault.restartedAt = Date.now();
        break;
      }
      case 'stop-worker': {
        // Every worker may be a new one still starting: wait for one that runs.
        const candidates = (await until(() => { const c = p.workers.filter((w) => w.running && w.url); return c.length ? c : undefined; }, Date.now() + 15_000, 100)) ?? [];
        if (candidates.length === 0) {
          fault.note = 'no worker to stop';
          break;
        }
        const victim = candidates[Math.floor(random() * candidates.length)];
        fault.at = Date.now();
        fault.victim = victim.name;
        fault.victimPid = victim.pid;
        monitor.stopped = victim;
        victim.signal('SIGSTOP');
        say(`SIGSTOP ${victim.name} (pid ${victim.pid}) for 10 s`);
        restarts.push(
          sleep(10_000).then(() => {
            victim.signal('SIGCONT');
            monitor.stopped = undefined;
            fault.restartedAt = Date.now();
            say(`SIGCONT ${victim.name}`);
          }),
        );
        break;
      }
      case 'restart-registry': {
        fault.victim = 'registry';
        fault.victimPid = p.registry.pid;
        registryHealth.first.end = await registrySnapshot(p);
        await p.registry.kill();
        say('SIGKILL registry; restarting it');
        await startAgain(p.registry);
        fault.restartedAt = Date.now();
        // The second registry's baseline: once every process is registered with it again.
        restarts.push(
          until(async () => healthy(p, await listing(p), monitor.stopped), deadline, 100).then(async () => {
            // A few seconds of checks first, so its keep-alive connection to every instance is open (as in the first baseline).
            await sleep(3000);
            registryHealth.second.start = await registrySnapshot(p);
          }),
        );
        break;
      }
      case 'restart-logservice': {
        fault.victim = 'logservice';
        fault.victimPid = p.log.pid;
        say('SIGTERM log service; restarting it');
        const code = await p.log.stop();
        fault.note = `exited ${code}`;
        await startAgain(p.log);
        fault.restartedAt = Date.now();
        break;
      }
    }
  }
  await Promise.all(restarts);
}

interface FaultOutcome {
  fault: Fault;
  detectedS?: number;
  backS?: number;
  healthyS?: number;
  drainedS?: number;
  watchersAgreeS?: number;
}

/** Reads the recovery times of one fault from the monitor's samples. */
function outcome(fault: Fault, monitor: Monitor, p: Platform): FaultOutcome {
  const at = fault.at!;
  const s = (sample: Sample | undefined) => (sample ? (sample.at - at) / 1000 : undefined);
  const upPids = (x: Sample) => new Set(x.instances!.filter((i) => i.state === 'up').map((i) => Number(i.metadata.pid)));
  const result: FaultOutcome = { fault };
  if (fault.kind !== 'restart-registry' && fault.victimPid) {
    result.detectedS = s(monitor.firstAfter(at, (x) => x.instances && !upPids(x).has(fault.victimPid!)));
  }
  const backPid = fault.kind === 'kill-worker' ? fault.replacement?.pid : fault.kind === 'stop-worker' ? fault.victimPid : undefined;
  const restartedAt = fault.restartedAt ?? at;
  if (backPid) result.backS = s(monitor.firstAfter(restartedAt, (x) => x.instances && upPids(x).has(backPid)));
  else if (fault.kind === 'restart-registry') result.backS = s(monitor.firstAfter(restartedAt, (x) => !!x.instances));
  else {
    const name = { 'kill-master': 'imagemaster', 'kill-storage': 'imagestorage', 'restart-logservice': 'log' }[fault.kind as string]!;
    result.backS = s(monitor.firstAfter(restartedAt, (x) => x.instances?.some((i) => i.serviceName === name && i.state === 'up' && Number(i.metadata.pid) !== fault.victimPid)));
  }
  result.healthyS = s(monitor.firstAfter(restartedAt, (x) => x.healthy));
  const limit = (fault.backlogBefore ?? 0) + 2;
  result.drainedS = s(monitor.firstAfter(restartedAt, (x) => (backlog(x) ?? Infinity) <= limit && (fault.kind !== 'restart-logservice' || (x.log?.buffered ?? Infinity) <= (fault.logBufferedBefore ?? 0) + 1000)));
  result.watchersAgreeS = s(monitor.firstAfter(restartedAt, (x) => x.watchersDiffering === 0));
  void p;
  return result;
}

// ---------------------------------------------------------------- the registry's health

interface RegistrySnapshot {
  at: number;
  fds: number;
  rssMB: number;
  checks: number;
  checksOver1s: number;
}

interface RegistryHealth {
  first: { start?: RegistrySnapshot; end?: RegistrySnapshot };
  second: { start?: RegistrySnapshot; end?: RegistrySnapshot };
}

async function registrySnapshot(p: Platform): Promise<RegistrySnapshot> {
  const text = await (await fetch(`${p.registryUrl}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
  const read = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
  const count = read(/^registry_check_latency_seconds_count(?:\{[^}]*\})? (\d+)/m);
  const upTo1s = read(/^registry_check_latency_seconds_bucket\{(?:[^}]*,)?le="1"[^}]*\} (\d+)/m);
  return { at: Date.now(), fds: fdCount(p.registry.pid), rssMB: procStats(p.registry.pid).rssMB, checks: count, checksOver1s: count - upTo1s };
}

// ---------------------------------------------------------------- the end checks

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function checkTasks(p: Platform, subs: Submission[]): Promise<{ checks: Check[]; taskCounts: Record<string, number>; attemptsHistogram: Record<number, number> }> {
  const checks: Check[] = [];
  const { tasks, counts } = await getJson<{ tasks: { id: number; state: string; op: string; width: number; height: number; attempts: number; error?: string }[]; counts: Record<string, number> }>(
    `${p.master.url}/tasks?limit=1000`,
    10_000,
  );
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const unsubmitted = subs.filter((s) => s.taskId === undefined);
  const ids = subs.map((s) => s.taskId).filter((id): id is number => id !== undefined);
  const reused = ids.length - new Set(ids).size;
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const notDone = subs.filter((s) => s.taskId !== undefined && byId.get(s.taskId)?.state !== 'done');
  const extra = tasks.filter((t) => !ids.includes(t.id));
  checks.push({ name: `all ${subs.length} images submitted`, ok: unsubmitted.length === 0, detail: unsubmitted.length ? `${unsubmitted.length} never accepted` : `${subs.reduce((a, s) => a + s.attempts, 0)} upload attempts for ${subs.length} images` });
  checks.push({ name: 'every task id distinct (none reused)', ok: reused === 0, detail: `${ids.length} ids, ${reused} repeated` });
  checks.push({
    name: `exactly ${subs.length} tasks at the master (none duplicated)`,
    ok: total === subs.length && extra.length === 0,
    detail: `${total} tasks (${JSON.stringify(counts)}); ${extra.length} not matching a submission${extra.length ? `: ${extra.slice(0, 5).map((t) => `#${t.id} ${t.op} ${t.width}x${t.height}`).join(', ')}` : ''}; ${subs.reduce((a, s) => a + s.ambiguous, 0)} upload attempts whose outcome was unknown to the client`,
  });
  checks.push({
    name: `all ${subs.length} tasks done`,
    ok: notDone.length === 0,
    detail: notDone.length ? notDone.slice(0, 5).map((s) => `#${s.taskId}: ${byId.get(s.taskId!)?.state} ${byId.get(s.taskId!)?.error ?? ''}`).join('; ') : `${counts.done} done`,
  });
  const mismatches: string[] = [];
  let verified = 0;
  for (const sub of subs) {
    if (sub.taskId === undefined || byId.get(sub.taskId)?.state !== 'done') continue;
    try {
      const res = await fetch(`${p.master.url}/tasks/${sub.taskId}/result`, { signal: AbortSignal.timeout(10_000) });
      if (res.status !== 200) throw new Error(`result answered ${res.status}`);
      const problem = resultMismatch(sub.image, Buffer.from(await res.arrayBuffer()));
      if (problem) mismatches.push(`#${sub.taskId} (${sub.image.op} ${sub.image.width}x${sub.image.height}): ${problem}`);
      else verified++;
    } catch (err) {
      mismatches.push(`#${sub.taskId}: ${(err as Error).message}`);
    }
  }
  checks.push({ name: 'every result pixel-exact', ok: mismatches.length === 0 && verified === subs.length, detail: `${verified} verified${mismatches.length ? `; ${mismatches.slice(0, 5).join('; ')}` : ''}` });
  const attemptsHistogram: Record<number, number> = {};
  for (const t of tasks) attemptsHistogram[t.attempts] = (attemptsHistogram[t.attempts] ?? 0) + 1;
  return { checks, taskCounts: counts, attemptsHistogram };
}

/** Every "chaos-line <i>" in the log service's files, counted by i. */
function countLogLines(dir: string, total: number): { seen: Uint32Array; files: number } {
  const seen = new Uint32Array(total);
  let files = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith('logs-')) continue;
    files++;
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line.includes('chaos-line ')) continue;
      try {
        const entry = JSON.parse(line) as { service?: string; message?: string };
        const match = /^chaos-line (\d+)$/.exec(entry.message ?? '');
        if (entry.service === 'chaoslog' && match && Number(match[1]) < total) seen[Number(match[1])]++;
      } catch {
        // not a JSON line
      }
    }
  }
  return { seen, files };
}

function ranges(ids: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    out.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j;
  }
  return out.slice(0, 10).join(', ') + (out.length > 10 ? `, … (${out.length} ranges)` : '');
}

// ---------------------------------------------------------------- main

const fmt = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits));

async function main(): Promise<number> {
  const random = seededRandom(SEED);
  say(`generating ${IMAGES} images (seed ${SEED})...`);
  const images = Array.from({ length: IMAGES }, (_, i) => makeImage(i, SEED));
  say('starting the platform...');
  const p = await startPlatform();
  say(`platform up in ${p.runDir} (registry ${p.registryUrl})`);
  const watcherUrls = JSON.parse(p.watchers.readyValue) as string[];
  const monitor = new Monitor(p, watcherUrls);
  const registryHealth: RegistryHealth = { first: {}, second: {} };
  const checks: Check[] = [];
  let report = '';
  let failed = true;
  try {
    const settled = await until(async () => healthy(p, await listing(p)) && (await watcherDisagreements(watcherUrls, await listing(p))).differing === 0, Date.now() + 60_000);
    if (!settled) throw new Error('the platform did not settle (every process up, every watcher in agreement) within 60 s');
    registryHealth.first.start = await registrySnapshot(p);
    monitor.start();

    const faults = schedule(random);
    t0 = Date.now();
    loadAtStart = os.loadavg()[0];
    say(`load and faults start: ${faults.length} faults (${faults.filter((f) => f.kind === 'kill-worker').length} worker kills)`);
    const logStart = await fetch(`${p.logClient.url}/start?count=${LOG_LINES}&rate=${LOG_RATE}`, { method: 'POST' });
    if (!logStart.ok) throw new Error(`log client did not start: ${logStart.status}`);
    const submitting = submitAll(p, images);
    await runFaults(p, monitor, faults, random, registryHealth);
    const faultsEnd = Date.now();
    say('faults done; waiting for the load to finish...');
    const subs = await submitting;
    await until(async () => {
      const { counts } = await getJson<{ counts: Record<string, number> }>(`${p.master.url}/tasks?limit=1`);
      return counts.pending + counts.running === 0 && subs.every((s) => s.taskId !== undefined);
    }, deadline, 250);
    await until(async () => {
      const progress = await getJson<LogProgress>(`${p.logClient.url}/progress`);
      return progress.emitted === progress.total && progress.buffered === 0;
    }, deadline, 250);
    await sleep(500); // one more monitor sample
    const doneAt = monitor.firstAfter(t0, (s) => s.counts && s.counts.done + s.counts.failed >= IMAGES && s.counts.pending + s.counts.running === 0)?.at;
    const logDoneAt = monitor.firstAfter(t0, (s) => s.log && s.log.emitted === s.log.total && s.log.total > 0 && s.log.buffered === 0)?.at;
    say(`tasks ${doneAt ? `done at ${fmt(elapsed(doneAt))} s` : 'NOT done by the deadline'}; log lines ${logDoneAt ? `shipped at ${fmt(elapsed(logDoneAt))} s` : 'NOT shipped by the deadline'}`);
    // Let the registry and the watchers converge after the last fault (dead workers' leases lapse in 3 s).
    let final = await listing(p);
    const agreedAt = await until(async () => {
      final = await listing(p);
      return healthy(p, final) && (await watcherDisagreements(watcherUrls, final)).differing === 0 ? Date.now() : 0;
    }, Math.min(deadline, Date.now() + 30_000), 250);
    await monitor.stop();
    fs.writeFileSync(path.join(p.runDir, 'samples.json'), JSON.stringify({ faults: faults.map((f) => ({ ...f, replacement: f.replacement?.name })), samples: monitor.samples }));
    if (registryHealth.second.start) registryHealth.second.end = await registrySnapshot(p);
    else registryHealth.first.end = await registrySnapshot(p);

    // ---- tasks
    const taskResult = await checkTasks(p, subs);
    checks.push(...taskResult.checks);

    // ---- watchers
    final = await listing(p);
    const disagreement = await watcherDisagreements(watcherUrls, final);
    checks.push({
      name: `every watcher's provider table equals the registry's listing (${WATCHERS} watchers)`,
      ok: disagreement.differing === 0,
      detail: disagreement.differing ? `${disagreement.differing} differ: ${disagreement.examples.join(' | ')}` : `all agree${agreedAt ? ` (${fmt((agreedAt - faultsEnd) / 1000)} s after the last fault)` : ''}`,
    });
    const up = final.filter((i) => i.state === 'up');
    const deadUp: string[] = [];
    for (const i of up) {
      const pid = Number(i.metadata.pid);
      const answers = await fetch(`${i.serviceURL}/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
      if (!alive(pid) || !answers) deadUp.push(`${i.serviceName} ${i.serviceURL} (pid ${pid})`);
    }
    checks.push({ name: 'no dead instance listed as up', ok: deadUp.length === 0, detail: deadUp.length ? deadUp.join(', ') : `${up.length} up instances, each alive and answering /health; ${final.length - up.length} down` });

    // ---- registry health
    const a = registryHealth.first;
    const b = registryHealth.second;
    const fdLeak = (x: typeof a) => (x.start && x.end ? x.end.fds - x.start.fds : 0);
    checks.push({
      name: 'registry: no file descriptor leak',
      ok: fdLeak(a) <= 16 && fdLeak(b) <= 16,
      detail: `first process ${a.start?.fds}→${a.end?.fds}; after its restart ${b.start?.fds}→${b.end?.fds} (at most +16 allowed: keep-alive sockets to new instances)`,
    });
    checks.push({
      name: 'registry: RSS flat',
      ok: (a.start && a.end ? a.end.rssMB - a.start.rssMB : 0) <= 40 && (b.start && b.end ? b.end.rssMB - b.start.rssMB : 0) <= 40,
      detail: `first process ${fmt(a.start?.rssMB)}→${fmt(a.end?.rssMB)} MB; after its restart ${fmt(b.start?.rssMB)}→${fmt(b.end?.rssMB)} MB (at most +40 MB allowed)`,
    });
    const over = (a.end?.checksOver1s ?? 0) + (b.end?.checksOver1s ?? 0);
    checks.push({
      name: `registry: no health check stalled past its timeout (${HEARTBEAT.HEARTBEAT_TIMEOUT_MS} ms)`,
      ok: over === 0 && monitor.maxCheckLatencyMs <= Number(HEARTBEAT.HEARTBEAT_TIMEOUT_MS) + 100,
      detail: `${(a.end?.checks ?? 0) + (b.end?.checks ?? 0)} checks, ${over} over 1 s in the latency histogram; the longest last-check latency seen in the listing ${fmt(monitor.maxCheckLatencyMs, 0)} ms; the slowest GET /services answer ${fmt(monitor.maxRegistryHealthMs, 0)} ms`,
    });

    // ---- logs: stop the client (final flush) and the log service (writes everything), then read its files
    const lastProgress = await getJson<LogProgress>(`${p.logClient.url}/progress`).catch(() => undefined);
    await p.logClient.stop();
    await p.watchers.stop();
    await p.log.stop();
    const { seen, files } = countLogLines(p.logDataDir, LOG_LINES);
    const missing: number[] = [];
    const twice: number[] = [];
    seen.forEach((n, i) => (n === 0 ? missing.push(i) : n > 1 && twice.push(i)));
    const dropped = lastProgress?.dropped ?? NaN;
    checks.push({
      name: `every one of ${LOG_LINES.toLocaleString('en')} log lines stored exactly once (or reported dropped; target 0 dropped)`,
      ok: twice.length === 0 && missing.length === dropped && dropped === 0,
      detail: `${(LOG_LINES - missing.length).toLocaleString('en')} stored in ${files} file(s); ${missing.length} missing${missing.length ? ` (${ranges(missing)})` : ''}; ${twice.length} stored more than once${twice.length ? ` (${ranges(twice)})` : ''}; the client reported ${dropped} dropped, ${lastProgress?.rejected} rejected, ${lastProgress?.retries} retried batches in ${lastProgress?.posts} posts`,
    });

    // ---- recovery
    const outcomes = faults.filter((f) => f.at).map((f) => outcome(f, monitor, p));
    const all = outcomes.every((o) => o.healthyS !== undefined && o.drainedS !== undefined);
    checks.push({ name: 'recovered from every fault (every process up in the registry, backlog back to its level before the fault)', ok: all, detail: all ? `${outcomes.length} faults` : outcomes.filter((o) => o.healthyS === undefined || o.drainedS === undefined).map((o) => `${o.fault.kind} at ${fmt(o.fault.atS)} s`).join(', ') });

    // ---- throughput over time
    const doneSeries = monitor.samples.filter((s) => s.counts);
    const rateAt = (from: number, to: number) => {
      const a0 = doneSeries.find((s) => s.at >= from);
      const b0 = [...doneSeries].reverse().find((s) => s.at <= to);
      return a0 && b0 && b0.at > a0.at ? ((b0.counts!.done - a0.counts!.done) * 1000) / (b0.at - a0.at) : NaN;
    };
    const perTenSeconds: string[] = [];
    const endS = Math.ceil(elapsed(doneAt ?? Date.now()) / 10) * 10;
    for (let s0 = 0; s0 < endS; s0 += 10) perTenSeconds.push(`| ${s0}–${s0 + 10} | ${fmt(rateAt(t0 + s0 * 1000, t0 + (s0 + 10) * 1000))} |`);

    const workerKills = outcomes.filter((o) => o.fault.kind === 'kill-worker');
    const med = (xs: (number | undefined)[]) => percentile(xs.filter((x): x is number => x !== undefined), 50);
    const mx = (xs: (number | undefined)[]) => Math.max(...xs.filter((x): x is number => x !== undefined));
    const row = (o: FaultOutcome) =>
      `| ${fmt(o.fault.atS)} | ${o.fault.kind}${o.fault.victim ? ` (${o.fault.victim})` : ''}${o.fault.note ? `, ${o.fault.note}` : ''} | ${fmt(o.detectedS, 2)} | ${o.fault.restartedAt ? fmt((o.fault.restartedAt - o.fault.at!) / 1000, 2) : 'n/a'} | ${fmt(o.backS, 2)} | ${fmt(o.healthyS, 2)} | ${fmt(o.drainedS, 2)} | ${fmt(o.watchersAgreeS, 2)} |`;
    const passed = checks.filter((c) => c.ok).length;
    failed = passed !== checks.length;
    const lp = lastProgress;
    report = `
Machine load (1-minute load average, ${os.availableParallelism()} cores): ${loadAtStart.toFixed(1)} when the load started, ${os.loadavg()[0].toFixed(1)} at the end (other work on the machine counts too).

**${failed ? `FAILED: ${checks.length - passed} of ${checks.length} checks` : `PASSED: all ${checks.length} checks`}.** Seed ${SEED}; the run took ${fmt((Date.now() - runStarted) / 1000, 0)} s (load and faults from t = 0; the last fault at ${fmt(elapsed(faultsEnd))} s; every task done at ${fmt(doneAt ? elapsed(doneAt) : undefined)} s; every log line shipped at ${fmt(logDoneAt ? elapsed(logDoneAt) : undefined)} s).

What ran (each a separate process on 127.0.0.1, fixed ports chosen free at start, data in a temp directory): registry (HEARTBEAT_INTERVAL_MS=${HEARTBEAT.HEARTBEAT_INTERVAL_MS}, HEARTBEAT_TIMEOUT_MS=${HEARTBEAT.HEARTBEAT_TIMEOUT_MS}, HEARTBEAT_FAILURES=${HEARTBEAT.HEARTBEAT_FAILURES}), log service, storage, master (LEASE_MS=5000, so a killed worker's tasks return in seconds), grades, portal, frontend, two workers at a time (default concurrency, registry lease 3 s), a log client (\`bench/chaos/logClient.ts\`) and ${WATCHERS} watcher services (\`bench/chaos/watchers.ts\`, one process, each service with its own port and registration) requiring ${WATCHED.join(', ')}.

Load: ${IMAGES} seeded PNGs (64x64 to 512x384, RGB and RGBA, the four ops in turn) uploaded to the master over ${SUBMIT_SECONDS} s, retried by the client when the master was unreachable; ${LOG_LINES.toLocaleString('en')} lines logged by the client at ${LOG_RATE}/s through the batching shipper with its default settings (buffer ${10_000} lines).

Faults (seeded schedule): ${workerKills.length} worker SIGKILLs (a new worker started at once each time), ${faults.filter((f) => f.at && f.kind !== 'kill-worker').map((f) => `${f.kind} at ${fmt(f.atS)} s`).join(', ')}. The master, storage and registry are SIGKILLed and started again on the same port; the log service gets SIGTERM and is started again; the stopped worker gets SIGCONT after 10 s.

### Checks

| check | result | detail |
| --- | --- | --- |
${checks.map((c) => `| ${c.name} | ${c.ok ? 'pass' : '**FAIL**'} | ${c.detail.replace(/\|/g, '\\|')} |`).join('\n')}

### Recovery from each fault (seconds after the fault)

detected: the registry no longer lists the victim as up. restart: the process was started again (listening) or SIGCONTed. back: the victim (or the new worker) is up in the registry. healthy: every running process is up in the registry and no dead one is. backlog: pending + running tasks back to their level before the fault (for the log service, also the client's buffer back within 1,000 lines of it): full throughput again. watchers: every watcher's table equals the registry's listing. Worker kills overlap the other faults, so later columns include their effects.

| at (s) | fault | detected | restart | back | healthy | backlog | watchers |
| --- | --- | --- | --- | --- | --- | --- | --- |
${outcomes.filter((o) => o.fault.kind !== 'kill-worker').map(row).join('\n')}

Worker kills (${workerKills.length}): detected in median ${fmt(med(workerKills.map((o) => o.detectedS)), 2)} s (max ${fmt(mx(workerKills.map((o) => o.detectedS)), 2)}); the new worker up after median ${fmt(med(workerKills.map((o) => o.backS)), 2)} s (max ${fmt(mx(workerKills.map((o) => o.backS)), 2)}); backlog back after median ${fmt(med(workerKills.map((o) => o.drainedS)), 2)} s (max ${fmt(mx(workerKills.map((o) => o.drainedS)), 2)}).

<details><summary>every worker kill</summary>

| at (s) | fault | detected | restart | back | healthy | backlog | watchers |
| --- | --- | --- | --- | --- | --- | --- | --- |
${workerKills.map(row).join('\n')}

</details>

### Throughput (tasks done per second, by 10 s window)

| seconds | tasks/s |
| --- | --- |
${perTenSeconds.join('\n')}

Attempts per task: ${Object.entries(taskResult.attemptsHistogram).map(([k, v]) => `${v} with ${k}`).join(', ')}.
Log client at the end: ${lp ? `${lp.shipped.toLocaleString('en')} shipped, ${lp.dropped} dropped, ${lp.rejected} rejected, ${lp.posts} posts, ${lp.retries} retries` : 'n/a'}.

### The registry's own health

| process | fds at start | fds at end | RSS at start (MB) | RSS at end (MB) | checks | checks over 1 s |
| --- | --- | --- | --- | --- | --- | --- |
| first (until its SIGKILL) | ${a.start?.fds} | ${a.end?.fds} | ${fmt(a.start?.rssMB)} | ${fmt(a.end?.rssMB)} | ${a.end?.checks ?? 'n/a'} | ${a.end?.checksOver1s ?? 'n/a'} |
| after the restart (from when everyone was back, to the end) | ${b.start?.fds} | ${b.end?.fds} | ${fmt(b.start?.rssMB)} | ${fmt(b.end?.rssMB)} | ${b.end?.checks ?? 'n/a'} | ${b.end?.checksOver1s ?? 'n/a'} |

Slowest GET /services (the monitor polls it every 250 ms): ${fmt(monitor.maxRegistryHealthMs, 0)} ms. Longest last-check latency seen: ${fmt(monitor.maxCheckLatencyMs, 0)} ms.
`;
    say(`${passed}/${checks.length} checks passed`);
    for (const c of checks) say(`${c.ok ? 'pass' : 'FAIL'}: ${c.name}: ${c.detail}`);
  } finally {
    await monitor.stop().catch(() => undefined);
    const order = [p.watchers, p.logClient, p.frontend, p.portal, p.grades, ...p.workers, p.master, p.storage];
    await Promise.all(order.map((m) => m.stop().catch(() => undefined)));
    await p.log.stop().catch(() => undefined);
    await p.registry.stop().catch(() => undefined);
    say(`process output kept in ${p.runDir}`);
  }
  if (report) {
    writeReport('chaos', 'Chaos run', `npm run chaos${SEED !== 1 ? ` (CHAOS_SEED=${SEED})` : ''}`, report, {
      file: REPORT,
      heading: '# Reliability\n\nFigures written by `npm run chaos` (bench/chaos.ts): the whole platform under load and faults. See the README.\n',
    });
  }
  void machine;
  return failed ? 1 : 0;
}

const timer = setTimeout(() => {
  process.stderr.write(`chaos: the run passed its deadline of ${DEADLINE_MS / 1000} s; stopping\n`);
  process.exit(2);
}, DEADLINE_MS + 60_000);
timer.unref();
main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
