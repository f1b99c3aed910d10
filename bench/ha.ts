/**
 * Registry replicas benchmark (`npm run bench:ha`), figures to docs/benchmarks.md (section `ha`):
 *   1. registrations/s with 32 in flight: the file store and one replica on etcd, side by side
 *   2. CPU at steady state with 1,000 instances at the 1 s interval: one replica alone, then each of two
 *   3. patch latency to 100 dependents through a replica
 *   4. SIGSTOP of a replica: time until the other drops it (takeover)
 *   5. kill -9 of a replica under 50 registrations/s (1,000 instances, 100 subscribers): acknowledged
 *      registrations lost, and time until every subscriber agrees with the truth
 * A load process (bench/registry.ts's `load` role) serves every heartbeat and patch endpoint; etcd is a private
 * one member (harness/etcd.ts), its data in a temporary folder.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile, procStats, writeReport } from './report.ts';
import { agent, call, ms, now, receiptCount, registerMany, registration, SCRIPT, spawnNode, startRegistryProcess, stop, type Child } from './registry/cluster.ts';
import { benchPatchLatency } from './registry/patches.ts';
import type { Receipt } from './registry/roles.ts';
import { startEtcd } from '../harness/etcd.ts';

const log = (line: string) => process.stdout.write(`${line}\n`);
const LEASE_S = 2;

function replica(endpoints: string, id: string): Promise<Child> {
  return startRegistryProcess({ REGISTRY_STORE: 'etcd', ETCD_ENDPOINTS: endpoints, REGISTRY_REPLICA_ID: id, LOG_LEVEL: 'warn' });
}

async function members(registry: Child): Promise<number> {
  return ((await call('GET', `${registry.url}/replicas`)).data.replicas ?? []).length;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function rate(registry: Child, load: string, from: number, count: number): Promise<number> {
  // A warm-up of 500 first, so the figure is not the JIT's.
  await registerMany(registry.url, load, from, 500, 32, (i) => `warm-${i % 20}`);
  const started = now();
  await registerMany(registry.url, load, from + 500, count, 32, (i) => `rate-${i % 50}`);
  return count / ((now() - started) / 1000);
}

async function cpuPct(pids: number[], windowS: number): Promise<number[]> {
  const before = pids.map((pid) => procStats(pid).cpuSeconds);
  const t0 = now();
  await sleep(windowS * 1000);
  const elapsed = (now() - t0) / 1000;
  return pids.map((pid, i) => ((procStats(pid).cpuSeconds - before[i]) / elapsed) * 100);
}

async function upUrls(registry: Child, name: string): Promise<Set<string>> {
  const { data } = await call('GET', `${registry.url}/services?name=${name}`);
  return new Set((data.instances as { serviceURL: string; state: string }[]).filter((i) => i.state === 'up').map((i) => i.serviceURL));
}

async function main(): Promise<void> {
  const load = await spawnNode([SCRIPT, 'load'], /LOAD (http:\/\/\S+)/);
  const cleanup: (() => Promise<unknown>)[] = [async () => load.child.kill('SIGKILL')];
  const lines: string[] = [];
  try {
    // 1. Registration rate, file store and etcd.
    log('registrations/s with 32 in flight…');
    const file = await startRegistryProcess({ LOG_LEVEL: 'warn', HEARTBEAT_INTERVAL_MS: '30000' });
    const fileRate = await rate(file, load.url, 0, 3000);
    await stop(file);
    const rateEtcd = await startEtcd();
    const single = await replica(rateEtcd.endpoints, 'r');
    await until('the replica to join', async () => (await members(single)) === 1);
    // The same long interval as the file store's run, so it times the registration path.
    const etcdRate = await rate(single, load.url, 10_000, 3000);
    await stop(single);
    await rateEtcd.stop();
    log(`  file ${fileRate.toFixed(0)}/s, etcd ${etcdRate.toFixed(0)}/s`);

    // 2. Steady state: one replica alone, then two.
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const a = await replica(etcd.endpoints, 'a');
    cleanup.push(() => stop(a));
    await until('a to join', async () => (await members(a)) === 1);
    log('steady state, 1,000 instances at 1 s…');
    await registerMany(a.url, load.url, 20_000, 1000, 32, (i) => `steady-${i % 50}`);
    await sleep(3000);
    const [alone] = await cpuPct([a.child.pid!], 10);
    const b = await replica(etcd.endpoints, 'b');
    cleanup.push(() => stop(b));
    await until('both to see each other', async () => (await members(a)) === 2 && (await members(b)) === 2);
    await sleep(3000);
    const [cpuA, cpuB] = await cpuPct([a.child.pid!, b.child.pid!], 10);
    log(`  one alone ${alone.toFixed(1)} %, two: ${cpuA.toFixed(1)} % + ${cpuB.toFixed(1)} % (${((cpuA + cpuB) / alone).toFixed(2)}×)`);

    // 3. Patch latency through a replica (its 100 dependents stay as the subscribers of 5).
    log('patch latency to 100 dependents through a replica…');
    const patches = await benchPatchLatency(a, load.url);
    log(`  p50 ${ms(patches.p50)}, p99 ${ms(patches.p99)}`);

    // 4. SIGSTOP takeover.
    log('SIGSTOP of a replica…');
    const takeovers: number[] = [];
    for (let round = 0; round < 3; round++) {
      b.child.kill('SIGSTOP');
      const stoppedAt = now();
      await until('a to drop b', async () => (await members(a)) === 1, 10_000);
      takeovers.push(now() - stoppedAt);
      b.child.kill('SIGCONT');
      await until('b back in the set', async () => (await members(a)) === 2 && (await members(b)) === 2);
    }
    log(`  takeover after ${takeovers.map((v) => ms(v)).join(', ')}`);

    // 5. kill -9 under 50 registrations/s: the providers of `target` flow through both; b is killed.
    log('kill -9 of a replica under 50 registrations/s…');
    const acknowledged: string[] = [];
    let flowing = true;
    let n = 0;
    const receiptsFrom = await receiptCount(load.url);
    const flood = (async () => {
      for (let next = now(); flowing; next += 20) {
        const body = registration(load.url, `flood/${n}`, 'target');
        const target = n++ % 2 === 0 ? a : b;
        void call('POST', `${target.url}/services`, body).then((r) => r.status === 200 && acknowledged.push(body.serviceURL), () => undefined);
        await sleep(Math.max(0, next + 20 - now()));
      }
    })();
    await sleep(3000);
    b.child.kill('SIGKILL');
    const killedAt = now();
    flowing = false;
    await flood;
    await sleep(1500);
    const truth = await upUrls(a, 'target');
    const lost = acknowledged.filter((url) => !truth.has(url)).length;
    const { data } = await call('GET', `${load.url}/_receipts?since=${receiptsFrom}`);
    const agreedAfter = agreement(data.receipts as Receipt[], truth, killedAt, load.url);
    const p100 = Math.max(...agreedAfter);
    log(`  ${acknowledged.length} acknowledged, ${lost} lost; every subscriber agreed ${ms(p100)} after the kill (${agreedAfter.filter((v) => !Number.isFinite(v)).length} never)`);

    const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
    const ratio = (cpuA + cpuB) / alone;
    lines.push(
      '| measurement | figure | target | |',
      '| --- | --- | --- | --- |',
      `| load average when the benchmark ended | ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} (2 cores of a shared virtual machine) | | |`,
      `| registrations/s, 32 in flight, file store | ${fileRate.toFixed(0)} (3,000 after 500 warm-up) | | |`,
      `| registrations/s, 32 in flight, etcd (one replica, one-member etcd) | ${etcdRate.toFixed(0)} (3,000 after 500 warm-up) | ≥ 1,000 | ${verdict(etcdRate >= 1000)} |`,
      `| CPU at steady state, 1,000 instances at 1 s: one replica alone | ${alone.toFixed(1)} % of one core (10 s window) | | |`,
      `| the same with two replicas | ${cpuA.toFixed(1)} % + ${cpuB.toFixed(1)} % = ${ratio.toFixed(2)}× one alone | ≤ 1.2× | ${verdict(ratio <= 1.2)} |`,
      `| patch latency, registration → 100 dependents through a replica | p50 ${ms(patches.p50)}, p99 ${ms(patches.p99)} (${patches.latencies.length} deliveries) | p99 ≤ 20 ms | ${verdict(patches.p99 <= 20)} |`,
      `| SIGSTOP of a replica → the other drops it | ${takeovers.map((v) => ms(v)).join(', ')} (lease ${LEASE_S} s) | ≤ lease + 1 s | ${verdict(Math.max(...takeovers) <= LEASE_S * 1000 + 1000)} |`,
      `| kill -9 under 50 registrations/s: acknowledged registrations lost | ${lost} of ${acknowledged.length} | 0 | ${verdict(lost === 0)} |`,
      `| the same: kill → every one of 100 subscribers agrees with the truth | p50 ${ms(percentile(agreedAfter, 50))}, p100 ${ms(p100)} | p100 ≤ 1 s | ${verdict(p100 <= 1000)} |`,
      '',
      'How it was measured:',
      '- etcd 3.4 from Debian, one member, its data in a temporary folder on the same 2 cores; replicas are real registry processes (REGISTRY_STORE=etcd, lease 2 s, LOG_LEVEL=warn).',
      '- The file store and etcd rates are each 3,000 registrations after 500 warm-up ones, 32 in flight over keep-alive connections, on a fresh registry with a 30 s check interval (so it times the registration path; checking is measured at steady state).',
      "- Steady state: 1,000 instances (50 names) at the 1 s default interval; CPU from /proc over 10 s, first of replica a alone, then of a and b after b joined (each checks the half it owns). The patch rounds of bench/registry.ts's section 4 run through a.",
      "- SIGSTOP: the time from the signal until a's GET /replicas lists only itself (the paused one's lease runs out; etcd checks expiry every 500 ms); three rounds, each SIGCONT'd and rejoined.",
      "- kill -9: the 100 dependents of the patch rounds are the subscribers; new providers of their required service are registered at 50/s, alternately through a and b, for 3 s; b is SIGKILLed and the flow stops. The truth is a's listing 1.5 s later; a subscriber agrees once it has been sent every URL of the truth (times from the load process's receipts, after the kill; 0 when it already had them).",
    );
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    agent.destroy();
  }
  writeReport('ha', 'Registry replicas on etcd', 'npm run bench:ha', lines.join('\n'));
}

/** For each subscriber: ms after the kill until it had received every URL of the truth (Infinity if it never did). */
function agreement(receipts: Receipt[], truth: Set<string>, killedAt: number, load: string): number[] {
  const firstAdded = new Map<string, Map<string, number>>();
  for (const r of receipts) {
    if (!r.subscriber.startsWith(`${load}/d/`)) continue;
    const seen = firstAdded.get(r.subscriber) ?? new Map<string, number>();
    firstAdded.set(r.subscriber, seen);
    for (const url of r.added) if (!seen.has(url)) seen.set(url, r.at);
  }
  const out: number[] = [];
  for (let d = 0; d < 100; d++) {
    const seen = firstAdded.get(`${load}/d/${d}`) ?? new Map<string, number>();
    let last = killedAt;
    for (const url of truth) last = Math.max(last, seen.get(url) ?? Infinity);
    out.push(last - killedAt);
  }
  return out;
}

await main().catch((err) => {
  process.stderr.write(`bench:ha failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
