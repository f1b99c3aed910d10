/**
 * 5. Time from SIGKILL of a provider process to its 100 dependents being told (they are the patch
 * section's dependents, which require `victim`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { call, now, receiptCount, register, SCRIPT, spawnNode, waitReceipts, type Child } from './cluster.ts';

export interface CrashFigures {
  /** Per kill, when the first and the last dependent were told (ms after the kill). */
  first: number[];
  last: number[];
}

/** `closeEach`: the victim answers every heartbeat with `Connection: close`, so only the schedule can find its death. */
export async function benchCrash(registry: Child, load: string, closeEach: boolean, rounds: number): Promise<CrashFigures> {
  const first: number[] = [];
  const last: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const victim = await spawnNode([SCRIPT, 'victim', closeEach ? 'close' : 'keep-alive'], /VICTIM (http:\/\/\S+)/);
    const body = { serviceName: 'victim', serviceURL: victim.url, heartbeatURL: `${victim.url}/heartbeat` };
    const since = await receiptCount(load);
    const id = await register(registry.url, body);
    await waitReceipts(load, since, (r) => r.filter((x) => x.added.includes(victim.url)).length >= 100);
    await sleep(1500 + Math.random() * 1000); // a random phase against the check schedule
    const sinceKill = await receiptCount(load);
    const killedAt = now();
    victim.child.kill('SIGKILL');
    const told = (await waitReceipts(load, sinceKill, (r) => r.filter((x) => x.removed.includes(victim.url)).length >= 100, 15_000))
      .filter((x) => x.removed.includes(victim.url))
      .map((x) => x.at - killedAt);
    first.push(Math.min(...told));
    last.push(Math.max(...told));
    await call('DELETE', `${registry.url}/services/${id}`);
  }
  return { first, last };
}
