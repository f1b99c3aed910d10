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
 * Its parts are in bench/chaos/ (settings, platform, monitor, load, faults, checks, registryHealth, summary).
 *
 * Settings (environment): CHAOS_SEED (1), CHAOS_IMAGES (300), CHAOS_LOG_LINES (100000),
 * CHAOS_LOG_RATE (lines/s, 1000), CHAOS_WATCHERS (20), CHAOS_DEADLINE_S (480, the whole run),
 * CHAOS_SUBMIT_S (60, the upload period), CHAOS_FAULTS_S (85, the fault period), and
 * `--registry-replicas N` or CHAOS_REGISTRY_REPLICAS (1): N registry replicas on a private etcd, one of
 * them also SIGKILLed and restarted and SIGSTOPped for 5 s (bench/chaos/replicas.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeReport } from './report.ts';
import { makeImage, seededRandom } from './chaos/images.ts';
import { clock, DEADLINE_MS, elapsed, fmt, IMAGES, LOG_LINES, LOG_RATE, REGISTRY_REPLICAS, REPORT, SEED, say } from './chaos/settings.ts';
import { getJson, until } from './chaos/poll.ts';
import { healthy, listing, startPlatform, watcherDisagreements } from './chaos/platform.ts';
import { Monitor, type LogProgress } from './chaos/monitor.ts';
import { submitAll } from './chaos/load.ts';
import { outcome, runFaults, schedule } from './chaos/faults.ts';
import { registryChecks, registrySnapshot, type RegistryHealth } from './chaos/registryHealth.ts';
import { checkLogLines, checkRecovery, checkTasks, checkWatchers, type Check } from './chaos/checks.ts';
import { renderReport } from './chaos/summary.ts';
import { checkReplicas } from './chaos/replicas.ts';

async function main(): Promise<number> {
  const random = seededRandom(SEED);
  say(`generating ${IMAGES} images (seed ${SEED})...`);
  const images = Array.from({ length: IMAGES }, (_, i) => makeImage(i, SEED));
  say('starting the platform...');
  const p = await startPlatform();
  say(`platform up in ${p.runDir} (registry ${p.registryUrl}${p.etcd ? ` on etcd ${p.etcd.endpoints}` : ''})`);
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
    clock.t0 = Date.now();
    clock.loadAtStart = os.loadavg()[0];
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
    }, clock.deadline, 250);
    await until(async () => {
      const progress = await getJson<LogProgress>(`${p.logClient.url}/progress`);
      return progress.emitted === progress.total && progress.buffered === 0;
    }, clock.deadline, 250);
    await sleep(500); // one more monitor sample
    const doneAt = monitor.firstAfter(clock.t0, (s) => s.counts && s.counts.done + s.counts.failed >= IMAGES && s.counts.pending + s.counts.running === 0)?.at;
    const logDoneAt = monitor.firstAfter(clock.t0, (s) => s.log && s.log.emitted === s.log.total && s.log.total > 0 && s.log.buffered === 0)?.at;
    say(`tasks ${doneAt ? `done at ${fmt(elapsed(doneAt))} s` : 'NOT done by the deadline'}; log lines ${logDoneAt ? `shipped at ${fmt(elapsed(logDoneAt))} s` : 'NOT shipped by the deadline'}`);
    // Let the registry and the watchers converge after the last fault (dead workers' leases lapse in 3 s).
    let final = await listing(p);
    const agreedAt = await until(async () => {
      final = await listing(p);
      return healthy(p, final) && (await watcherDisagreements(watcherUrls, final)).differing === 0 ? Date.now() : 0;
    }, Math.min(clock.deadline, Date.now() + 30_000), 250);
    await monitor.stop();
    fs.writeFileSync(path.join(p.runDir, 'samples.json'), JSON.stringify({ faults: faults.map((f) => ({ ...f, replacement: f.replacement?.name })), samples: monitor.samples }));
    if (registryHealth.second.start) registryHealth.second.end = await registrySnapshot(p);
    else registryHealth.first.end = await registrySnapshot(p);

    const taskResult = await checkTasks(p, subs);
    checks.push(...taskResult.checks);
    final = await listing(p);
    checks.push(...(await checkWatchers(watcherUrls, final, agreedAt ? (agreedAt - faultsEnd) / 1000 : undefined)));
    checks.push(...registryChecks(registryHealth, monitor));
    checks.push(...(await checkReplicas(p)));
    // Logs: stop the client (final flush) and the log service (writes everything), then read its files.
    const lastProgress = await getJson<LogProgress>(`${p.logClient.url}/progress`).catch(() => undefined);
    await p.logClient.stop();
    await p.watchers.stop();
    await p.log.stop();
    checks.push(checkLogLines(p.logDataDir, lastProgress));
    const outcomes = faults.filter((f) => f.at).map((f) => outcome(f, monitor));
    checks.push(checkRecovery(outcomes));

    const passed = checks.filter((c) => c.ok).length;
    failed = passed !== checks.length;
    report = renderReport({ checks, faults, outcomes, monitor, registryHealth, attemptsHistogram: taskResult.attemptsHistogram, lastProgress, faultsEnd, doneAt, logDoneAt });
    say(`${passed}/${checks.length} checks passed`);
    for (const c of checks) say(`${c.ok ? 'pass' : 'FAIL'}: ${c.name}: ${c.detail}`);
  } finally {
    await monitor.stop().catch(() => undefined);
    const order = [p.watchers, p.logClient, p.frontend, p.portal, p.grades, ...p.workers, p.master, p.storage];
    await Promise.all(order.map((m) => m.stop().catch(() => undefined)));
    await p.log.stop().catch(() => undefined);
    await Promise.all(p.registries.map((r) => r.stop().catch(() => undefined)));
    await p.etcd?.stop().catch(() => undefined);
    say(`process output kept in ${p.runDir}`);
  }
  if (report) {
    // Each mode keeps its own section, so the replica run sits beside the file store's.
    const replicas = REGISTRY_REPLICAS > 1;
    const command = `npm run chaos${replicas ? ` -- --registry-replicas ${REGISTRY_REPLICAS}` : ''}${SEED !== 1 ? ` (CHAOS_SEED=${SEED})` : ''}`;
    writeReport(replicas ? 'chaos-replicas' : 'chaos', replicas ? `Chaos run with ${REGISTRY_REPLICAS} registry replicas on etcd` : 'Chaos run', command, report, {
      file: REPORT,
      heading: '# Reliability\n\nFigures written by `npm run chaos` (bench/chaos.ts): the whole platform under load and faults. See the README.\n',
    });
  }
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
