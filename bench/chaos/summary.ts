/** The chaos run's report (docs/reliability.md): what ran, the checks, the recovery from each fault, throughput, the registry's health. */
import os from 'node:os';
import { percentile } from '../report.ts';
import type { Check } from './checks.ts';
import type { Fault, FaultOutcome } from './faults.ts';
import type { LogProgress, Monitor } from './monitor.ts';
import type { RegistryHealth } from './registryHealth.ts';
import { clock, elapsed, fmt, HEARTBEAT, IMAGES, LOG_LINES, LOG_RATE, REGISTRY_REPLICAS, SEED, SUBMIT_SECONDS, WATCHED, WATCHERS } from './settings.ts';

export interface RunResult {
  checks: Check[];
  faults: Fault[];
  outcomes: FaultOutcome[];
  monitor: Monitor;
  registryHealth: RegistryHealth;
  attemptsHistogram: Record<number, number>;
  lastProgress?: LogProgress;
  faultsEnd: number;
  doneAt?: number;
  logDoneAt?: number;
}

export function renderReport(r: RunResult): string {
  const { checks, faults, outcomes, monitor, faultsEnd, doneAt, logDoneAt } = r;
  const a = r.registryHealth.first;
  const b = r.registryHealth.second;
  // Throughput over time, from the done counts the monitor sampled.
  const doneSeries = monitor.samples.filter((s) => s.counts);
  const rateAt = (from: number, to: number) => {
    const a0 = doneSeries.find((s) => s.at >= from);
    const b0 = [...doneSeries].reverse().find((s) => s.at <= to);
    return a0 && b0 && b0.at > a0.at ? ((b0.counts!.done - a0.counts!.done) * 1000) / (b0.at - a0.at) : NaN;
  };
  const perTenSeconds: string[] = [];
  const endS = Math.ceil(elapsed(doneAt ?? Date.now()) / 10) * 10;
  for (let s0 = 0; s0 < endS; s0 += 10) perTenSeconds.push(`| ${s0}–${s0 + 10} | ${fmt(rateAt(clock.t0 + s0 * 1000, clock.t0 + (s0 + 10) * 1000))} |`);

  const workerKills = outcomes.filter((o) => o.fault.kind === 'kill-worker');
  const med = (xs: (number | undefined)[]) => percentile(xs.filter((x): x is number => x !== undefined), 50);
  const mx = (xs: (number | undefined)[]) => Math.max(...xs.filter((x): x is number => x !== undefined));
  const row = (o: FaultOutcome) =>
    `| ${fmt(o.fault.atS)} | ${o.fault.kind}${o.fault.victim ? ` (${o.fault.victim})` : ''}${o.fault.note ? `, ${o.fault.note}` : ''} | ${fmt(o.detectedS, 2)} | ${o.fault.restartedAt ? fmt((o.fault.restartedAt - o.fault.at!) / 1000, 2) : 'n/a'} | ${fmt(o.backS, 2)} | ${fmt(o.healthyS, 2)} | ${fmt(o.drainedS, 2)} | ${fmt(o.watchersAgreeS, 2)} |`;
  const passed = checks.filter((c) => c.ok).length;
  const failed = passed !== checks.length;
  const lp = r.lastProgress;
  return `
Machine load (1-minute load average, ${os.availableParallelism()} cores): ${clock.loadAtStart.toFixed(1)} when the load started, ${os.loadavg()[0].toFixed(1)} at the end (other work on the machine counts too).

**${failed ? `FAILED: ${checks.length - passed} of ${checks.length} checks` : `PASSED: all ${checks.length} checks`}.** Seed ${SEED}; the run took ${fmt((Date.now() - clock.runStarted) / 1000, 0)} s (load and faults from t = 0; the last fault at ${fmt(elapsed(faultsEnd))} s; every task done at ${fmt(doneAt ? elapsed(doneAt) : undefined)} s; every log line shipped at ${fmt(logDoneAt ? elapsed(logDoneAt) : undefined)} s).

What ran (each a separate process on 127.0.0.1, fixed ports chosen free at start, data in a temp directory): ${REGISTRY_REPLICAS > 1 ? `${REGISTRY_REPLICAS} registry replicas on a private one-member etcd (REGISTRY_STORE=etcd, replica lease 2 s; every service given all of them in REGISTRY_URL)` : 'registry'} (HEARTBEAT_INTERVAL_MS=${HEARTBEAT.HEARTBEAT_INTERVAL_MS}, HEARTBEAT_TIMEOUT_MS=${HEARTBEAT.HEARTBEAT_TIMEOUT_MS}, HEARTBEAT_FAILURES=${HEARTBEAT.HEARTBEAT_FAILURES}), log service, storage, master (LEASE_MS=5000, so a killed worker's tasks return in seconds), grades, portal, frontend, two workers at a time (default concurrency, registry lease 3 s), a log client (\`bench/chaos/logClient.ts\`) and ${WATCHERS} watcher services (\`bench/chaos/watchers.ts\`, one process, each service with its own port and registration) requiring ${WATCHED.join(', ')}.

Load: ${IMAGES} seeded PNGs (64x64 to 512x384, RGB and RGBA, the four ops in turn) uploaded to the master over ${SUBMIT_SECONDS} s, retried by the client when the master was unreachable; ${LOG_LINES.toLocaleString('en')} lines logged by the client at ${LOG_RATE}/s through the batching shipper with its default settings (buffer ${10_000} lines).

Faults (seeded schedule): ${workerKills.length} worker SIGKILLs (a new worker started at once each time), ${faults.filter((f) => f.at && f.kind !== 'kill-worker').map((f) => `${f.kind} at ${fmt(f.atS)} s`).join(', ')}. The master, storage and registry are SIGKILLed and started again on the same port; the log service gets SIGTERM and is started again; the stopped worker gets SIGCONT after 10 s.${REGISTRY_REPLICAS > 1 ? ' With replicas, restart-registry hits the first replica; kill-replica SIGKILLs the last and starts it again 3 s later, stop-replica SIGSTOPs it for 5 s (the others must drop it within its lease and go on taking registrations, renewals and sending patches).' : ''}

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

Attempts per task: ${Object.entries(r.attemptsHistogram).map(([k, v]) => `${v} with ${k}`).join(', ')}.
Log client at the end: ${lp ? `${lp.shipped.toLocaleString('en')} shipped, ${lp.dropped} dropped, ${lp.rejected} rejected, ${lp.posts} posts, ${lp.retries} retries` : 'n/a'}.

### The registry's own health

| process | fds at start | fds at end | RSS at start (MB) | RSS at end (MB) | checks | checks over 1 s |
| --- | --- | --- | --- | --- | --- | --- |
| first (until its SIGKILL) | ${a.start?.fds} | ${a.end?.fds} | ${fmt(a.start?.rssMB)} | ${fmt(a.end?.rssMB)} | ${a.end?.checks ?? 'n/a'} | ${a.end?.checksOver1s ?? 'n/a'} |
| after the restart (from when everyone was back, to the end) | ${b.start?.fds} | ${b.end?.fds} | ${fmt(b.start?.rssMB)} | ${fmt(b.end?.rssMB)} | ${b.end?.checks ?? 'n/a'} | ${b.end?.checksOver1s ?? 'n/a'} |

Slowest GET /services (the monitor polls it every 250 ms): ${fmt(monitor.maxRegistryHealthMs, 0)} ms. Longest last-check latency seen: ${fmt(monitor.maxCheckLatencyMs, 0)} ms.
`;
}
