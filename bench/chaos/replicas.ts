/**
 * The chaos run's registry replica faults (with --registry-replicas N on a private etcd): one replica
 * SIGKILLed and restarted, one SIGSTOPped for 5 s; how long the others took to drop it and to take it back;
 * and the end check that every replica lists the same and sees all the others.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Managed } from './cluster.ts';
import type { Fault } from './faults.ts';
import type { Check } from './checks.ts';
import { listing, startAgain, type Platform } from './platform.ts';
import { getJson, until } from './poll.ts';
import { clock, REGISTRY_REPLICAS, say } from './settings.ts';

const KILLED_FOR_MS = 3000;
const PAUSED_FOR_MS = 5000;

async function replicaIds(replica: Managed): Promise<string[]> {
  return (await getJson<{ replicas?: { id: string }[] }>(`${replica.url}/replicas`, 2000)).replicas?.map((r) => r.id).sort() ?? [];
}

/**
 * The replica the faults hit: the last (the first is restart-registry's, whose health the run reads), once
 * every replica is in the set (a replica fault before may still be recovering: they don't overlap).
 */
async function victimOf(p: Platform, fault: Fault): Promise<Managed | undefined> {
  const victim = p.registries.at(-1)!;
  const whole = await rejoinedAfter(p, Date.now());
  if (whole === undefined || !victim.running || victim === p.pausedRegistry) {
    fault.note = `${victim.name} was not in the replica set`;
    return undefined;
  }
  fault.at = Date.now();
  fault.victim = victim.name;
  fault.victimPid = victim.pid;
  return victim;
}

/** ms until another running replica no longer lists the victim (undefined if none did within 10 s). */
async function droppedAfter(p: Platform, victim: Managed, since: number): Promise<number | undefined> {
  const dropped = await until(async () => {
    const others = p.registries.filter((r) => r !== victim && r.running && r !== p.pausedRegistry);
    for (const other of others) if (!(await replicaIds(other)).includes(victim.name)) return Date.now();
    return 0;
  }, Date.now() + 10_000, 20);
  return dropped ? dropped - since : undefined;
}

/** ms until every running replica lists every replica again. */
async function rejoinedAfter(p: Platform, since: number): Promise<number | undefined> {
  const names = p.registries.map((r) => r.name).sort();
  const done = await until(async () => {
    if (!p.registries.every((r) => r.running && r.url)) return 0;
    const views = await Promise.all(p.registries.map((r) => replicaIds(r)));
    return views.every((ids) => JSON.stringify(ids) === JSON.stringify(names)) ? Date.now() : 0;
  }, Math.min(clock.deadline, Date.now() + 30_000), 50);
  return done ? done - since : undefined;
}

const ms = (v: number | undefined) => (v === undefined ? 'never' : `${v} ms`);

export async function killReplica(p: Platform, fault: Fault): Promise<void> {
  const victim = await victimOf(p, fault);
  if (!victim) return;
  const at = fault.at!;
  await victim.kill();
  say(`SIGKILL ${victim.name} (pid ${fault.victimPid}); restarting it in ${KILLED_FOR_MS / 1000} s`);
  const dropped = await droppedAfter(p, victim, at);
  await sleep(Math.max(0, at + KILLED_FOR_MS - Date.now()));
  await startAgain(victim);
  fault.restartedAt = Date.now();
  fault.note = `the others dropped it after ${ms(dropped)}; back in the set ${ms(await rejoinedAfter(p, fault.restartedAt))} after its restart`;
}

export async function pauseReplica(p: Platform, fault: Fault): Promise<void> {
  const victim = await victimOf(p, fault);
  if (!victim) return;
  const at = fault.at!;
  p.pausedRegistry = victim;
  victim.signal('SIGSTOP');
  say(`SIGSTOP ${victim.name} (pid ${fault.victimPid}) for ${PAUSED_FOR_MS / 1000} s`);
  const dropped = await droppedAfter(p, victim, at);
  await sleep(Math.max(0, at + PAUSED_FOR_MS - Date.now()));
  victim.signal('SIGCONT');
  p.pausedRegistry = undefined;
  fault.restartedAt = Date.now();
  say(`SIGCONT ${victim.name}`);
  fault.note = `the others dropped it after ${ms(dropped)} (lease 2 s); back in the set ${ms(await rejoinedAfter(p, fault.restartedAt))} after SIGCONT`;
}

/** At the end: every replica sees all the others, and every replica's listing (URL and state of each instance) is the same. */
export async function checkReplicas(p: Platform): Promise<Check[]> {
  if (REGISTRY_REPLICAS < 2) return [];
  const names = p.registries.map((r) => r.name).sort();
  const sets = await Promise.all(p.registries.map((r) => replicaIds(r).catch(() => [])));
  const views = await Promise.all(
    p.registries.map(async (r) => (await listing(p, r).catch(() => [])).map((i) => `${i.serviceURL} ${i.state}`).sort()),
  );
  const differing = p.registries.filter((_, k) => JSON.stringify(views[k]) !== JSON.stringify(views[0])).map((r) => r.name);
  return [
    {
      name: `every registry replica sees all ${names.length}`,
      ok: sets.every((ids) => JSON.stringify(ids) === JSON.stringify(names)),
      detail: p.registries.map((r, k) => `${r.name}: ${sets[k].join(', ') || 'none'}`).join('; '),
    },
    {
      name: 'every registry replica lists the same instances in the same states',
      ok: differing.length === 0 && views[0].length > 0,
      detail: differing.length ? `${differing.join(', ')} differ from ${p.registries[0].name}` : `${views[0].length} instances on each of ${names.length}`,
    },
  ];
}
