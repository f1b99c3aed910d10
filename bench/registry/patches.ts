/** 4. Patch latency p50/p99 from a provider's registration to 100 dependents receiving it. */
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from '../report.ts';
import { call, now, receiptCount, register, registration, waitReceipts, type Child } from './cluster.ts';

export interface PatchFigures {
  /** Every delivery's latency (ms) in the measured rounds. */
  latencies: number[];
  /** The slowest delivery of each measured round (ms). */
  roundMax: number[];
  rounds: number;
  warmUpRounds: number;
  p50: number;
  p99: number;
}

export async function benchPatchLatency(registry: Child, load: string): Promise<PatchFigures> {
  const dependents = [];
  for (let d = 0; d < 100; d++) dependents.push(registration(load, `d/${d}`, 'dependent', ['target', 'victim']));
  for (const body of dependents) await register(registry.url, body);
  await sleep(500);
  const latencies: number[] = [];
  const roundMax: number[] = [];
  const rounds = 30;
  // Ten unmeasured rounds first: they open the connections to the 100 dependents and let the JIT
  // compile the notifier's path (each round is only 100 sends; the first few are several times slower).
  const warmUpRounds = 10;
  for (let round = -warmUpRounds; round < rounds; round++) {
    const since = await receiptCount(load);
    const provider = registration(load, `p/${round + warmUpRounds}`, 'target');
    const started = now();
    const id = await register(registry.url, provider);
    const received = await waitReceipts(load, since, (r) => r.filter((x) => x.added.includes(provider.serviceURL)).length >= 100);
    const these = received.filter((r) => r.added.includes(provider.serviceURL)).map((r) => r.at - started);
    if (round >= 0) {
      latencies.push(...these);
      roundMax.push(Math.max(...these));
    }
    const sinceRemoval = await receiptCount(load);
    await call('DELETE', `${registry.url}/services/${id}`);
    await waitReceipts(load, sinceRemoval, (r) => r.filter((x) => x.removed.includes(provider.serviceURL)).length >= 100);
  }
  return { latencies, roundMax, rounds, warmUpRounds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}
