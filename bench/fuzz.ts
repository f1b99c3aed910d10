/**
 * npm run fuzz: bad input against every service at once.
 *
 * Starts the registry, log service, grades, portal, storage, master, a worker and the frontend on
 * 127.0.0.1, then sends them malformed JSON and wrong types (seeded mutations), 100 MiB bodies
 * (declared and chunked), path-traversal ids, header abuse, slowloris headers and bodies, and
 * registers a peer that accepts connections and never answers. Meanwhile a control client in its
 * own process times a cheap request to every service, and every process's RSS is sampled.
 *
 * A violation: an answer that is not a clear 4xx in the JSON error shape (pages may answer HTML),
 * a process that died, RSS that grew past the bound, a control request or a registry operation
 * slower than the bound, a slow client that was not cut off. Exits 1 on any.
 *
 *   --seconds N  (FUZZ_SECONDS, default 60): the budget for the seeded mutations
 *   --seed N     (FUZZ_SEED, default: random, printed): repeats a run exactly
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { startProcess, startRegistry, tempDir, ROOT, alive, type Proc } from '../harness/processes.ts';
import { getJson } from '../harness/http.ts';
import { percentile, procStats } from './report.ts';
import { Random } from './fuzz/random.ts';
import { Findings } from './fuzz/checks.ts';
import { routesFor, type Target } from './fuzz/targets.ts';
import { headerAbuse, hugeBodies, mutateJson, slowloris, traversalIds, type HugeResult, type SlowResult } from './fuzz/attacks.ts';
import { hangingRegistration, register, registryRound, startHangingPeer, startStub, type RegistryRound } from './fuzz/hangingPeer.ts';
import type { ControlSample } from './fuzz/control.ts';

const program = new Command('fuzz')
  .description('bad input against every service; exits 1 on any violation')
  .option('--seconds <n>', 'budget for the seeded random mutations', process.env.FUZZ_SECONDS ?? '60')
  .option('--seed <n>', 'seed of the random generator', process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31)))
  .option('--control-limit-ms <n>', 'slowest control request or registry operation allowed', process.env.FUZZ_CONTROL_LIMIT_MS ?? '2000')
  // Under sustained load V8 grows its heap and RSS plateaus some 40-80 MB up (measured: grades at 750 bad
  // requests/s levels off at +70 MB within 6 s and stays there for 90 s); the log service also keeps an index of
  // every line it accepts, and grew 102 MB in one CI run. A leak keeps growing past 150 MB; a huge body read in
  // full is caught by the bytes it took, not by this.
  .option('--rss-growth-mb <n>', 'largest RSS growth allowed per process', process.env.FUZZ_RSS_GROWTH_MB ?? '150')
  .parse();
const opts = program.opts<{ seconds: string; seed: string; controlLimitMs: string; rssGrowthMb: string }>();
const budgetMs = Math.max(5, Number(opts.seconds)) * 1000;
const seed = Number(opts.seed);
const controlLimitMs = Number(opts.controlLimitMs);
const rssGrowthMb = Number(opts.rssGrowthMb);

/** Short server timeouts, so slow clients are cut off within a short run. */
const HEADERS_TIMEOUT_MS = 3000;
const REQUEST_TIMEOUT_MS = 6000;
/** node checks timeouts every second; plus slack for a loaded machine. */
const CUTOFF_SLACK_MS = 4000;
/** Image limits well under 100 MiB, so "refused early" and "read up to the limit" are far apart. */
const IMAGE_LIMIT_BYTES = 8 * 2 ** 20;

const SERVICES: { name: string; entry: string }[] = [
  { name: 'log', entry: 'cmd/logservice.ts' },
  { name: 'grades', entry: 'cmd/grades.ts' },
  { name: 'portal', entry: 'cmd/portal.ts' },
  { name: 'imagestorage', entry: 'cmd/storage.ts' },
  { name: 'imagemaster', entry: 'cmd/master.ts' },
  { name: 'imageworker', entry: 'cmd/worker.ts' },
  { name: 'imagefrontend', entry: 'cmd/frontend.ts' },
];

const log = (line: string) => process.stdout.write(`${line}\n`);
const findings = new Findings();
const procs: Proc[] = [];
const random = new Random(seed);
log(`fuzz: seed ${seed}, budget ${budgetMs / 1000} s (repeat with --seed ${seed})`);

const root = tempDir('switchboard-fuzz-');
// A file next to the data directories: no traversal may read or overwrite it.
const SECRET = 'the fuzz secret';
fs.writeFileSync(path.join(root, 'secret'), SECRET);
fs.writeFileSync(path.join(root, 'secret.png'), SECRET);

const serverEnv = {
  HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
  REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  MAX_IMAGE_BYTES: String(IMAGE_LIMIT_BYTES),
  MAX_UPLOAD_BYTES: String(IMAGE_LIMIT_BYTES),
  LOG_LEVEL: 'info',
};

let exitCode = 1;
try {
  const registry = await startRegistry({ ...serverEnv, HEARTBEAT_INTERVAL_MS: '500', HEARTBEAT_TIMEOUT_MS: '1000', NOTIFY_TIMEOUT_MS: '2000' }, path.join(root, 'registry'));
  procs.push(registry);
  const targets: Target[] = [{ name: 'registry', entry: 'cmd/registry.ts', url: registry.url, pid: registry.child.pid!, ...routesFor('registry') }];
  const started = await Promise.all(
    SERVICES.map((s) =>
      startProcess(s.entry, {
        env: { ...serverEnv, REGISTRY_URL: registry.url, DATA_DIR: path.join(root, s.name), CONCURRENCY: '1' },
        timeoutMs: 60_000,
      }),
    ),
  );
  SERVICES.forEach((s, i) => {
    procs.push(started[i]);
    targets.push({ name: s.name, entry: s.entry, url: started[i].url, pid: started[i].child.pid!, ...routesFor(s.name) });
  });
  log(`started ${targets.length} services: ${targets.map((t) => `${t.name} ${t.url}`).join(', ')}`);

  // Wait until everyone registered, so the attacks hit a working platform.
  for (let i = 0; i < 300; i++) {
    const listing = await getJson(`${registry.url}/services`);
    if (listing.body.instances?.filter((x: { state: string }) => x.state === 'up').length >= SERVICES.length) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // RSS of every process, sampled all along.
  const rss = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  let phase: 'baseline' | 'attack' = 'baseline';
  const baselineRss = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const sampler = setInterval(() => {
    for (const t of targets) {
      if (!alive(t.pid)) continue;
      (phase === 'baseline' ? baselineRss : rss).get(t.name)!.push(procStats(t.pid).rssMB);
    }
  }, 200);

  // The control client, in its own process.
  const samples: (ControlSample & { phase: string })[] = [];
  const control = fork(path.join(ROOT, 'bench/fuzz/control.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  control.on('message', (sample: ControlSample) => samples.push({ ...sample, phase }));
  control.send({
    targets: targets.map((t) => ({ name: t.name, url: `${t.url}/health` })).concat([{ name: 'registry listing', url: `${registry.url}/services` }]),
    intervalMs: 100,
  });

  // The hanging peer, registered as a subscriber (of everything) with a heartbeat; and a healthy watcher.
  const peer = await startHangingPeer();
  const watcher = await startStub();
  const provider = await startStub();
  const hangReg = await register(registry.url, hangingRegistration(peer, 'fuzz-hanging', ['fuzz-provider', 'log', 'grades', 'imagemaster']));
  if (hangReg.status !== 200) findings.add('registry', 'hanging peer', 'registering the hanging peer', `answered ${hangReg.status}`);
  const watchReg = await register(registry.url, watcher.registration('fuzz-watcher', ['fuzz-provider']));
  if (watchReg.status !== 200) findings.add('registry', 'hanging peer', 'registering the watcher', `answered ${watchReg.status}`);

  // The baseline: two seconds once the control client answers for every service.
  for (let i = 0; i < 600 && new Set(samples.map((x) => x.name)).size < targets.length + 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const rssBefore = new Map([...baselineRss].map(([name, values]) => [name, percentile(values, 50)]));
  phase = 'attack';
  const attackStarted = Date.now();
  log('baseline taken; attacking');

  // Slow clients: held open all along the other attacks, on every service.
  const slowGiveUpMs = REQUEST_TIMEOUT_MS + CUTOFF_SLACK_MS + 10_000;
  const slow: Promise<SlowResult[]>[] = targets.flatMap((t) => [slowloris(t, 'slow headers', 10, slowGiveUpMs), slowloris(t, 'slow body', 10, slowGiveUpMs)]);

  // The registry's healthy clients, timed, while the hanging peer holds its calls open.
  const rounds: RegistryRound[] = [];
  let attacking = true;
  const registryClient = (async () => {
    while (attacking) {
      rounds.push(await registryRound(registry.url, watcher, provider, 'fuzz-provider', controlLimitMs));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();

  // Fixed attacks, every service at once (one request at a time per service).
  const huge: HugeResult[] = [];
  await Promise.all(
    targets.map(async (t) => {
      await headerAbuse(findings, t);
      await traversalIds(findings, t, random);
    }),
  );
  log(`header abuse and traversal done (${Date.now() - attackStarted} ms)`);
  // Huge bodies one service at a time: the attacker's own 100 MiB streams should not blur the memory figures.
  for (const t of targets) await hugeBodies(findings, t, huge);
  log(`huge bodies done (${Date.now() - attackStarted} ms)`);

  // Seeded mutations until the budget is spent (and at least until slow clients had their cutoff time).
  const mutateUntil = Math.max(attackStarted + budgetMs, attackStarted + REQUEST_TIMEOUT_MS + CUTOFF_SLACK_MS);
  let mutations = 0;
  await Promise.all(
    targets.map(async (t) => {
      const own = new Random(seed + t.name.length * 7919 + t.name.charCodeAt(0));
      while (Date.now() < mutateUntil) {
        await mutateJson(findings, t, own);
        mutations++;
      }
    }),
  );
  log(`${mutations} seeded mutations done (${Date.now() - attackStarted} ms)`);

  const slowResults = (await Promise.all(slow)).flat();
  attacking = false;
  await registryClient;
  control.send({ stop: true });
  await new Promise((resolve) => setTimeout(resolve, 300));
  clearInterval(sampler);

  // Slow clients must have been cut off near the server's timeouts.
  for (const s of slowResults) {
    findings.count('slowloris');
    const bound = (s.kind === 'slow headers' ? HEADERS_TIMEOUT_MS : REQUEST_TIMEOUT_MS) + CUTOFF_SLACK_MS;
    if (s.cutAfterMs === undefined || s.cutAfterMs > bound) {
      findings.add(s.service, 'slowloris', s.kind, s.cutAfterMs === undefined ? `still open after ${slowGiveUpMs} ms` : `cut off only after ${s.cutAfterMs} ms (bound ${bound})`);
    }
  }

  // Every process is up and answers.
  for (const t of targets) {
    const health = await getJson(`${t.url}/health`).catch(() => ({ status: 0 }));
    if (!alive(t.pid) || health.status !== 200) findings.add(t.name, 'liveness', 'after the attacks', `the process is ${alive(t.pid) ? `up but /health answered ${health.status}` : 'gone'}`);
  }

  // Nothing outside the data directories was read or written.
  if (fs.readFileSync(path.join(root, 'secret'), 'utf8') !== SECRET || fs.readFileSync(path.join(root, 'secret.png'), 'utf8') !== SECRET) {
    findings.add('imagestorage', 'path traversal', 'the secret next to the data directories', 'was overwritten');
  }
  const strays = fs.readdirSync(root).filter((name) => !['secret', 'secret.png', 'registry', ...SERVICES.map((s) => s.name)].includes(name));
  if (strays.length) findings.add('imagestorage', 'path traversal', 'files next to the data directories', `found ${strays.join(', ')}`);

  // Memory: the peak during the attacks against the median before them.
  const memoryRows: string[] = [];
  for (const t of targets) {
    const before = rssBefore.get(t.name) ?? NaN;
    const peak = Math.max(...(rss.get(t.name) ?? [NaN]));
    memoryRows.push(`| ${t.name} | ${before.toFixed(0)} | ${peak.toFixed(0)} | ${(peak - before).toFixed(0)} |`);
    if (peak - before > rssGrowthMb) findings.add(t.name, 'memory', 'RSS during the attacks', `grew ${(peak - before).toFixed(0)} MB (from ${before.toFixed(0)} to ${peak.toFixed(0)}; bound ${rssGrowthMb} MB)`);
  }

  // Control latency per service: baseline and under attack.
  const latencyRows: string[] = [];
  for (const name of [...new Set(samples.map((s) => s.name))]) {
    const base = samples.filter((s) => s.name === name && s.phase === 'baseline');
    const attack = samples.filter((s) => s.name === name && s.phase === 'attack');
    const failed = attack.filter((s) => s.status !== 200);
    const worst = attack.reduce((max, s) => Math.max(max, s.ms), 0);
    latencyRows.push(
      `| ${name} | ${percentile(base.map((s) => s.ms), 50).toFixed(1)} | ${percentile(attack.map((s) => s.ms), 50).toFixed(1)} | ${percentile(attack.map((s) => s.ms), 99).toFixed(1)} | ${worst.toFixed(0)} | ${attack.length} | ${failed.length} |`,
    );
    if (failed.length) findings.add(name, 'control client', `${failed.length} of ${attack.length} requests`, `failed (status ${failed[0].status})`);
    if (worst > controlLimitMs) findings.add(name, 'control client', 'slowest request under attack', `${worst.toFixed(0)} ms (bound ${controlLimitMs} ms)`);
  }

  // The registry's healthy clients next to the hanging peer.
  const okRounds = rounds.filter((r) => r.ok);
  for (const r of rounds.filter((x) => !x.ok)) findings.add('registry', 'hanging peer', 'a registration round', r.problem ?? `no patch to the watcher within ${controlLimitMs * 2} ms`);
  const slowest = (pick: (r: RegistryRound) => number) => okRounds.reduce((max, r) => Math.max(max, pick(r)), 0);
  for (const [what, pick] of [
    ['registration', (r: RegistryRound) => r.registerMs],
    ['listing', (r: RegistryRound) => r.listMs],
    ['deregistration', (r: RegistryRound) => r.deregisterMs],
    ['patch to a healthy watcher', (r: RegistryRound) => r.patchMs],
  ] as const) {
    findings.count('hanging peer');
    if (slowest(pick) > controlLimitMs) findings.add('registry', 'hanging peer', what, `took ${slowest(pick).toFixed(0)} ms with a hanging peer registered (bound ${controlLimitMs} ms)`);
  }
  if (peer.connections === 0) findings.add('registry', 'hanging peer', 'the hanging peer', 'was never called (the test did not test anything)');

  // Summary.
  log('\n## Requests sent, by category\n');
  for (const [category, count] of [...findings.sent].sort()) log(`- ${category}: ${count}`);
  log('\n## Huge bodies (100 MiB): status, MiB the server let through, ms\n');
  for (const h of huge) log(`- ${h.service}: ${h.what}: ${h.status}, ${h.sentMiB.toFixed(1)} MiB, ${h.ms} ms`);
  log('\n## Slow clients: cut off after (ms), median / max\n');
  for (const t of targets) {
    for (const kind of ['slow headers', 'slow body'] as const) {
      const cut = slowResults.filter((s) => s.service === t.name && s.kind === kind).map((s) => s.cutAfterMs ?? Infinity);
      log(`- ${t.name}, ${kind}: ${percentile(cut, 50).toFixed(0)} / ${Math.max(...cut).toFixed(0)} (statuses ${[...new Set(slowResults.filter((s) => s.service === t.name && s.kind === kind).map((s) => s.status))].join(', ')})`);
    }
  }
  log('\n## Memory (RSS, MB): before, peak under attack, growth\n');
  log('| service | before | peak | growth |\n|---|---|---|---|');
  memoryRows.forEach((row) => log(row));
  log('\n## Control client (ms): baseline p50, under attack p50 / p99 / max, requests, failed\n');
  log('| service | base p50 | p50 | p99 | max | n | failed |\n|---|---|---|---|---|---|---|');
  latencyRows.forEach((row) => log(row));
  log(
    `\n## Registry with a hanging peer (${okRounds.length} rounds, ${peer.connections} connections to the peer): slowest registration ${slowest((r) => r.registerMs).toFixed(0)} ms, listing ${slowest((r) => r.listMs).toFixed(0)} ms, deregistration ${slowest((r) => r.deregisterMs).toFixed(0)} ms, patch ${slowest((r) => r.patchMs).toFixed(0)} ms`,
  );
  await Promise.all([peer.close(), watcher.close(), provider.close()]);

  log(`\n## Violations: ${findings.violations.length}\n`);
  const shown = findings.violations.slice(0, 200);
  for (const v of shown) log(`- [${v.service}] ${v.category}: ${v.what}: ${v.problem}`);
  if (findings.violations.length > shown.length) log(`- ... and ${findings.violations.length - shown.length} more`);
  log(`\nseed ${seed}: ${findings.violations.length === 0 ? 'PASS' : 'FAIL'}`);
  exitCode = findings.violations.length === 0 ? 0 : 1;
} catch (err) {
  log(`fuzz: ${(err as Error).stack ?? err}`);
  exitCode = 2;
} finally {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 10_000).catch(() => undefined)));
  fs.rmSync(root, { recursive: true, force: true });
}
process.exit(exitCode);
