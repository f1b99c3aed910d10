/** The chaos run's faults: a seeded schedule, injecting each one, and reading its recovery times from the monitor. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Managed } from './cluster.ts';
import type { Monitor, Sample } from './monitor.ts';
import { healthy, listing, startAgain, workerProc, type Platform } from './platform.ts';
import { until } from './poll.ts';
import { registrySnapshot, type RegistryHealth } from './registryHealth.ts';
import { clock, FAULTS_UNTIL_S, REGISTRY_REPLICAS, say } from './settings.ts';
import { pauseReplica, killReplica } from './replicas.ts';

export type FaultKind = 'kill-worker' | 'kill-master' | 'kill-storage' | 'stop-worker' | 'restart-registry' | 'restart-logservice' | 'kill-replica' | 'stop-replica';

export interface Fault {
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

export function schedule(random: () => number): Fault[] {
  const faults: Fault[] = [];
  const big: FaultKind[] = ['kill-master', 'kill-storage', 'stop-worker', 'restart-registry', 'restart-logservice'];
  // With replicas: one is also SIGKILLed (restarted 3 s later) and one SIGSTOPped for 5 s.
  if (REGISTRY_REPLICAS > 1) big.push('kill-replica', 'stop-replica');
  const spacing = Math.min(15, (FAULTS_UNTIL_S - 12) / big.length);
  for (let i = big.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [big[i], big[j]] = [big[j], big[i]];
  }
  big.forEach((kind, i) => faults.push({ kind, atS: 10 + i * spacing + random() * 3 }));
  for (let at = 5 + random() * 3; at < FAULTS_UNTIL_S; at += 5 + random() * 4) faults.push({ kind: 'kill-worker', atS: at });
  return faults.sort((a, b) => a.atS - b.atS);
}

export function backlog(s: Sample | undefined): number | undefined {
  return s?.counts ? s.counts.pending + s.counts.running : undefined;
}

export async function runFaults(p: Platform, monitor: Monitor, faults: Fault[], random: () => number, registryHealth: RegistryHealth): Promise<void> {
  const restarts: Promise<unknown>[] = [];
  for (const fault of faults) {
    await sleep(Math.max(0, clock.t0 + fault.atS * 1000 - Date.now()));
    if (Date.now() > clock.deadline) break;
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
        fault.victim = p.registry.name;
        fault.victimPid = p.registry.pid;
        registryHealth.first.end = await registrySnapshot(p);
        await p.registry.kill();
        say(`SIGKILL ${p.registry.name}; restarting it`);
        await startAgain(p.registry);
        fault.restartedAt = Date.now();
        // The second registry's baseline: once every process is registered with it again.
        restarts.push(
          until(async () => healthy(p, await listing(p), monitor.stopped), clock.deadline, 100).then(async () => {
            // A few seconds of checks first, so its keep-alive connection to every instance is open (as in the first baseline).
            await sleep(3000);
            registryHealth.second.start = await registrySnapshot(p);
          }),
        );
        break;
      }
      case 'kill-replica':
        restarts.push(killReplica(p, fault));
        break;
      case 'stop-replica':
        restarts.push(pauseReplica(p, fault));
        break;
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

export interface FaultOutcome {
  fault: Fault;
  detectedS?: number;
  backS?: number;
  healthyS?: number;
  drainedS?: number;
  watchersAgreeS?: number;
}

/** Reads the recovery times of one fault from the monitor's samples. */
export function outcome(fault: Fault, monitor: Monitor): FaultOutcome {
  const at = fault.at!;
  const s = (sample: Sample | undefined) => (sample ? (sample.at - at) / 1000 : undefined);
  const upPids = (x: Sample) => new Set(x.instances!.filter((i) => i.state === 'up').map((i) => Number(i.metadata.pid)));
  const result: FaultOutcome = { fault };
  const registryFault = fault.kind === 'restart-registry' || fault.kind === 'kill-replica' || fault.kind === 'stop-replica';
  if (!registryFault && fault.victimPid) {
    result.detectedS = s(monitor.firstAfter(at, (x) => x.instances && !upPids(x).has(fault.victimPid!)));
  }
  const backPid = fault.kind === 'kill-worker' ? fault.replacement?.pid : fault.kind === 'stop-worker' ? fault.victimPid : undefined;
  const restartedAt = fault.restartedAt ?? at;
  if (backPid) result.backS = s(monitor.firstAfter(restartedAt, (x) => x.instances && upPids(x).has(backPid)));
  else if (registryFault) result.backS = s(monitor.firstAfter(restartedAt, (x) => !!x.instances));
  else {
    const name = { 'kill-master': 'imagemaster', 'kill-storage': 'imagestorage', 'restart-logservice': 'log' }[fault.kind as string]!;
    result.backS = s(monitor.firstAfter(restartedAt, (x) => x.instances?.some((i) => i.serviceName === name && i.state === 'up' && Number(i.metadata.pid) !== fault.victimPid)));
  }
  result.healthyS = s(monitor.firstAfter(restartedAt, (x) => x.healthy));
  const limit = (fault.backlogBefore ?? 0) + 2;
  result.drainedS = s(monitor.firstAfter(restartedAt, (x) => (backlog(x) ?? Infinity) <= limit && (fault.kind !== 'restart-logservice' || (x.log?.buffered ?? Infinity) <= (fault.logBufferedBefore ?? 0) + 1000)));
  result.watchersAgreeS = s(monitor.firstAfter(restartedAt, (x) => x.watchersDiffering === 0));
  return result;
}
