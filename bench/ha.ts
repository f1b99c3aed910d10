/**
 * Registry replicas benchmark (`npm run bench:ha`), figures to docs/benchmarks.md (section `ha`):
 *   1. registrations/s with 32 in flight: the file store and one replica on etcd, side by side
 *   2. CPU at steady state with 1,000 instances at the 1 s interval: two replicas beside one alone, in the same windows
 *   3. patch latency to 100 dependents: the file store and through a replica, side by side
 *   4. SIGSTOP of a replica: time until the other drops it (takeover)
 *   5. kill -9 of a replica under 50 registrations/s (1,000 instances, 100 subscribers): acknowledged
 *      registrations lost, and time until every subscriber agrees with the truth
 * A load process (bench/registry.ts's `load` role) serves every heartbeat and patch endpoint; etcd is a private
 * one member (harness/etcd.ts), its data in a temporary folder.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { procStats, writeReport } from './report.ts';
import { agent, call, ms, now, registerMany, SCRIPT, spawnNode, startRegistryProcess, stop, type Child } from './registry/cluster.ts';
import { benchPatchLatency } from './registry/patches.ts';
import { killUnderFlow } from './ha/kill.ts';
import { startEtcd } from '../harness/etcd.ts';

const log = (line: string) => process.stdout.write(`${line}\n`);
const LEASE_S = 2;
/** Steady state: windows measured side by side (two replicas, one alone), after settling this long. */
const STEADY_WINDOWS = 4;
const SETTLE_S = 20;
const WINDOW_S = 15;

function replica(endpoints: string, id: string): Promise<Child> {
  return startRegistryProcess({ REGISTRY_STORE: 'etcd', ETCD_ENDPOINTS: endpoints, REGISTRY_REPLICA_ID: id });
}

async function members(registry: Child): Promise<number> {
  return ((await call('GET', `${registry.url}/replicas`)).data.replicas ?? []).length;
}

/** What a replica lists: each instance's URL and state, in order, to compare two replicas' views. */
async function listing(registry: Child): Promise<string[]> {
  const { data } = await call('GET', `${registry.url}/services`);
  return (data.instances as { serviceURL: string; state: string }[]).map((i) => `${i.serviceURL} ${i.state}`).sort();
}

const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface Rate {
  perSecond: number;
  /** CPU per registration (µs) of the registry and of etcd (when there is one), over the measured block. */
  registryUs: number;
  etcdUs?: number;
}

async function rate(registry: Child, load: string, from: number, count: number, etcdPid?: number): Promise<Rate> {
  // A warm-up of 500 first, so the figure is not the JIT's.
  await registerMany(registry.url, load, from, 500, 32, (i) => `warm-${i % 20}`);
  const cpu = () => [procStats(registry.child.pid!).cpuSeconds, etcdPid ? procStats(etcdPid).cpuSeconds : 0];
  const [registryBefore, etcdBefore] = cpu();
  const started = now();
  await registerMany(registry.url, load, from + 500, count, 32, (i) => `rate-${i % 50}`);
  const elapsed = (now() - started) / 1000;
  const [registryAfter, etcdAfter] = cpu();
  const us = (seconds: number) => (seconds / count) * 1e6;
  return { perSecond: count / elapsed, registryUs: us(registryAfter - registryBefore), etcdUs: etcdPid ? us(etcdAfter - etcdBefore) : undefined };
}

async function cpuPct(pids: number[], windowS: number): Promise<number[]> {
  const before = pids.map((pid) => procStats(pid).cpuSeconds);
  const t0 = now();
  await sleep(windowS * 1000);
  const elapsed = (now() - t0) / 1000;
  return pids.map((pid, i) => ((procStats(pid).cpuSeconds - before[i]) / elapsed) * 100);
}

async function main(): Promise<void> {
  const load = await spawnNode([SCRIPT, 'load'], /LOAD (http:\/\/\S+)/);
  const cleanup: (() => Promise<unknown>)[] = [async () => load.child.kill('SIGKILL')];
  const lines: string[] = [];
  try {
    // 1. Registration rate, file store and etcd.
    log('registrations/s with 32 in flight…');
    const file = await startRegistryProcess({ HEARTBEAT_INTERVAL_MS: '30000' });
    cleanup.push(() => stop(file));
    const fileRate = await rate(file, load.url, 0, 3000);
    await stop(file);
    const rateEtcd = await startEtcd();
    cleanup.push(() => rateEtcd.stop());
    const single = await replica(rateEtcd.endpoints, 'r');
    cleanup.push(() => stop(single));
    await until('the replica to join', async () => (await members(single)) === 1);
    // The same long interval as the file store's run, so it times the registration path.
    const etcdRate = await rate(single, load.url, 10_000, 3000, rateEtcd.members[0].child.pid);
    await stop(single);
    await rateEtcd.stop();
    log(`  file ${fileRate.perSecond.toFixed(0)}/s (${fileRate.registryUs.toFixed(0)} µs of CPU each), etcd ${etcdRate.perSecond.toFixed(0)}/s (replica ${etcdRate.registryUs.toFixed(0)} µs, etcd ${etcdRate.etcdUs!.toFixed(0)} µs each)`);

    // 2. Steady state, side by side in the same windows, so both settings see the same drift of a shared machine:
    // a and b on one etcd, and one replica alone on another, each with 1,000 instances of its own.
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const soloEtcd = await startEtcd();
    cleanup.push(() => soloEtcd.stop());
    const [a, b, solo] = await Promise.all([replica(etcd.endpoints, 'a'), replica(etcd.endpoints, 'b'), replica(soloEtcd.endpoints, 'solo')]);
    cleanup.push(() => stop(a), () => stop(b), () => stop(solo));
    await until('a and b to see each other, the solo one itself', async () => (await members(a)) === 2 && (await members(b)) === 2 && (await members(solo)) === 1);
    log('steady state, 1,000 instances at 1 s: two replicas beside one alone…');
    await registerMany(a.url, load.url, 20_000, 1000, 32, (i) => `steady-${i % 50}`);
    await registerMany(solo.url, load.url, 30_000, 1000, 32, (i) => `steady-${i % 50}`);
    // Settled first: the registrations' own work and the first checks' new connections are over.
    await sleep(SETTLE_S * 1000);
    const alone: number[] = [];
    const two: [number, number][] = [];
    for (let window = 0; window < STEADY_WINDOWS; window++) {
      const [cpuA, cpuB, cpuSolo] = await cpuPct([a.child.pid!, b.child.pid!, solo.child.pid!], WINDOW_S);
      two.push([cpuA, cpuB]);
      alone.push(cpuSolo);
      log(`  window ${window + 1}: one alone ${cpuSolo.toFixed(1)} %, two: ${cpuA.toFixed(1)} % + ${cpuB.toFixed(1)} % (${((cpuA + cpuB) / cpuSolo).toFixed(2)}×)`);
    }
    await stop(solo);
    await soloEtcd.stop();
    const sum = (values: number[]) => values.reduce((x, y) => x + y, 0);
    const ratio = sum(two.map(([x, y]) => x + y)) / sum(alone);

    // 3. Patch latency, side by side: the file store with the same 1,000 instances at 1 s, then through replica a
    // (its 100 dependents stay as the subscribers of 5).
    log('patch latency to 100 dependents: the file store, then through a replica…');
    const fileRegistry = await startRegistryProcess({});
    cleanup.push(() => stop(fileRegistry));
    await registerMany(fileRegistry.url, load.url, 40_000, 1000, 32, (i) => `steady-${i % 50}`);
    await sleep(SETTLE_S * 1000);
    const filePatches = await benchPatchLatency(fileRegistry, load.url);
    await stop(fileRegistry);
    const patches = await benchPatchLatency(a, load.url);
    log(`  file store p50 ${ms(filePatches.p50)}, p99 ${ms(filePatches.p99)}; replica p50 ${ms(patches.p50)}, p99 ${ms(patches.p99)}`);

    // 4. SIGSTOP takeover; after each wake, both replicas must list the same instances up.
    log('SIGSTOP of a replica…');
    const takeovers: number[] = [];
    let disagreements = 0;
    for (let round = 0; round < 3; round++) {
      b.child.kill('SIGSTOP');
      const stoppedAt = now();
      await until('a to drop b', async () => (await members(a)) === 1, 10_000);
      takeovers.push(now() - stoppedAt);
      b.child.kill('SIGCONT');
      await until('b back in the set', async () => (await members(a)) === 2 && (await members(b)) === 2);
      const agree = async () => same(await listing(a), await listing(b));
      await until('both replicas to list the same', agree, 5000).catch(() => disagreements++);
    }
    log(`  takeover after ${takeovers.map((v) => ms(v)).join(', ')}; listings differed after ${disagreements} of 3 wakes`);

    // 5. kill -9 under 50 registrations/s.
    log('kill -9 of a replica under 50 registrations/s…');
    const kill = await killUnderFlow(a, b, load.url);
    const refused = Object.entries(kill.refused).map(([status, count]) => `${count} × ${status === '0' ? 'no answer' : status}`).join(', ') || 'none';
    log(`  ${kill.acknowledged} of ${kill.sent} acknowledged (refused: ${refused}), ${kill.lost} lost; a dropped b ${ms(kill.droppedAfter)} after the kill, the last call was answered ${ms(kill.lastAnswerAfter)} after it`);
    log(`  every subscriber agreed ${ms(kill.p100)} after the kill (${kill.never} never; the worst lacks ${kill.worstMissing} of ${kill.truth})`);

    const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
    const us = (v: number) => `${v.toFixed(0)} µs`;
    lines.push(
      '| measurement | figure | target | |',
      '| --- | --- | --- | --- |',
      `| load average when the benchmark ended | ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} (2 cores of a shared virtual machine) | | |`,
      `| registrations/s, 32 in flight, file store | ${fileRate.perSecond.toFixed(0)} (registry CPU ${us(fileRate.registryUs)} each) | | |`,
      `| registrations/s, 32 in flight, etcd (one replica, one-member etcd) | ${etcdRate.perSecond.toFixed(0)} (replica CPU ${us(etcdRate.registryUs)}, etcd ${us(etcdRate.etcdUs!)} each) | ≥ 1,000 | ${verdict(etcdRate.perSecond >= 1000)} |`,
      `| CPU at steady state, 1,000 instances at 1 s: one replica alone | ${alone.map((v) => `${v.toFixed(1)} %`).join(', ')} of one core (${STEADY_WINDOWS} windows of ${WINDOW_S} s) | | |`,
      `| the same with two replicas | ${two.map(([x, y]) => `${x.toFixed(1)} % + ${y.toFixed(1)} %`).join(', ')}: ${ratio.toFixed(2)}× one alone (sum over sum) | ≤ 1.2× | ${verdict(ratio <= 1.2)} |`,
      `| patch latency, registration → 100 dependents, file store (1,000 instances at 1 s) | p50 ${ms(filePatches.p50)}, p99 ${ms(filePatches.p99)} (${filePatches.latencies.length} deliveries) | | |`,
      `| the same through a replica on etcd (its registration committed in etcd first) | p50 ${ms(patches.p50)}, p99 ${ms(patches.p99)} (${patches.latencies.length} deliveries; ${(patches.p99 / filePatches.p99).toFixed(2)}× the file store's p99) | p99 ≤ 20 ms | ${verdict(patches.p99 <= 20)} |`,
      `| SIGSTOP of a replica → the other drops it | ${takeovers.map((v) => ms(v)).join(', ')} (lease ${LEASE_S} s); after the wake both list the same in ${3 - disagreements} of 3 | ≤ lease + 1 s | ${verdict(Math.max(...takeovers) <= LEASE_S * 1000 + 1000 && disagreements === 0)} |`,
      `| kill -9 under 50 registrations/s: acknowledged registrations lost | ${kill.lost} of ${kill.acknowledged} (${kill.sent} sent; not acknowledged: ${refused}) | 0 | ${verdict(kill.lost === 0)} |`,
      `| the same: kill → every one of 100 subscribers agrees with the truth | p50 ${ms(kill.p50)}, p100 ${ms(kill.p100)}${kill.never ? ` (${kill.never} never within 10 s; the worst lacks ${kill.worstMissing} of ${kill.truth})` : ''}; a dropped b after ${ms(kill.droppedAfter)}, the last call was answered after ${ms(kill.lastAnswerAfter)} | p100 ≤ 1 s | ${verdict(kill.p100 <= 1000)} |`,
      '',
      'How it was measured:',
      '- etcd 3.4 from Debian, one member, its data in a temporary folder on the same 2 cores; replicas are real registry processes (REGISTRY_STORE=etcd, lease 2 s); one load process serves every heartbeat and patch endpoint.',
      '- The file store and etcd rates are each 3,000 registrations after 500 warm-up ones, 32 in flight over keep-alive connections, on a fresh registry with a 30 s check interval (so it times the registration path; checking is measured at steady state). CPU per registration from /proc over the 3,000, for the registry and for etcd.',
      `- Steady state, side by side: replicas a and b on one etcd, and one replica alone on another etcd, each setting with 1,000 instances (50 names) at the 1 s default interval (all served by the one load process); after ${SETTLE_S} s of settling, the CPU of all three from /proc over the same ${STEADY_WINDOWS} windows of ${WINDOW_S} s, so both settings see the same drift of the shared machine. The ratio is (a + b) over the one alone, summed over the windows. The patch rounds of bench/registry.ts's section 4 then run on a file-store registry holding another 1,000 instances at 1 s (after ${SETTLE_S} s of settling), and then through a (with b beside it).`,
      "- SIGSTOP: the time from the signal until a's GET /replicas lists only itself (the paused one's lease runs out; etcd checks expiry every 500 ms); three rounds, each SIGCONT'd and rejoined, then both replicas' GET /services compared (URL and state of every instance, within 5 s).",
      "- kill -9: the 100 dependents of the patch rounds are the subscribers; new providers of their required service are registered at 50/s by the clock, alternately through a and b, for 3 s; then b is SIGKILLed and the flow stops. The truth is a's listing once every call has its answer; a subscriber agrees once it has been sent every URL of the truth (from the load process's receipts; 0 when it already had them; waited for up to 10 s).",
    );
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    agent.destroy();
  }
  writeReport('ha', 'Registry replicas on etcd', 'npm run bench:ha', lines.join('\n'));
}

await main().catch((err) => {
  process.stderr.write(`bench:ha failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
