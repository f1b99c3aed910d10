/**
 * Registry benchmark (`npm run bench:registry`), figures to docs/benchmarks.md:
 *   1. registrations/s for 0→1,000 and 9,000→10,000 (10,000 instances, heartbeat URLs served by one load process)
 *   2. one full health sweep of 1,000 instances (registry in this process, so sweep() can be timed)
 *   3. CPU and RSS of a real registry process at steady state: 1,000 instances, 1 s default interval
 *   4. patch latency p50/p99 from a provider's registration to 100 dependents receiving it
 *   5. time from SIGKILL of a provider process to its dependents being told
 *   6. the event stream with 200 watchers, 10 of which never read (bench/registryStream.ts; alone: `tsx bench/registry.ts stream`)
 * The heartbeat and patch endpoints live in a separate load process (this file, run as `load`), so the
 * registry's CPU is its own. Times that cross processes are wall-clock with sub-millisecond precision.
 *
 * Its parts are in bench/registry/ (roles, cluster, registrations, sweep, steady, patches, crash, summary);
 * this file keeps the run's order.
 */
import fs from 'node:fs';
import { writeReport } from './report.ts';
import { benchStreams } from './registryStream.ts';
import { runLoad, runVictim } from './registry/roles.ts';
import { agent, call, median, ms, registerMany, SCRIPT, spawnNode, startRegistryProcess, stop } from './registry/cluster.ts';
import { benchRegistrations } from './registry/registrations.ts';
import { benchSweep } from './registry/sweep.ts';
import { benchSteadyState } from './registry/steady.ts';
import { benchPatchLatency } from './registry/patches.ts';
import { benchCrash } from './registry/crash.ts';
import { renderReport } from './registry/summary.ts';

const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const load = await spawnNode([SCRIPT, 'load'], /LOAD (http:\/\/\S+)/);
  let lines: string[] = [];
  try {
    log('registering 10,000 instances…');
    const reg = await benchRegistrations(load.url);
    log(`  0→1,000: ${reg.first.toFixed(0)}/s (${reg.firstCpuUs.toFixed(0)} µs CPU each), 9,000→10,000: ${reg.last.toFixed(0)}/s (${reg.lastCpuUs.toFixed(0)} µs CPU each)`);

    log('sweeping 1,000 instances…');
    const sweep = await benchSweep(load.url);
    log(`  cold ${ms(sweep.cold)}, warm median ${ms(median(sweep.warm))} (${ms(median(sweep.warmCpu))} of registry CPU)`);

    // 3-5. A real registry at the defaults.
    const registry = await startRegistryProcess({});
    try {
      log('steady state with 1,000 instances at the 1 s default…');
      const steady = await benchSteadyState(registry, load.url);
      log(`  CPU ${steady.cpuPct.toFixed(1)} % of one core, RSS ${steady.rssMB.toFixed(0)} MB, ${steady.okChecks} checks so far`);

      log('patch latency to 100 dependents…');
      const patches = await benchPatchLatency(registry, load.url);
      const { latencies, roundMax, p50, p99 } = patches;
      log(`  ${latencies.length} deliveries: p50 ${ms(p50)}, p99 ${ms(p99)}, max ${ms(Math.max(...latencies))}; slowest per round: ${roundMax.map((v) => v.toFixed(0)).join(' ')}`);

      log('SIGKILL of a provider → dependents told…');
      const keepAlive = await benchCrash(registry, load.url, false, 10);
      log(`  keep-alive heartbeats: last dependent told after median ${ms(median(keepAlive.last))}, max ${ms(Math.max(...keepAlive.last))}`);
      const scheduled = await benchCrash(registry, load.url, true, 10);
      log(`  no pooled connection: last dependent told after median ${ms(median(scheduled.last))}, max ${ms(Math.max(...scheduled.last))}`);

      lines = renderReport({ reg, sweep, steady, patches, keepAlive, scheduled });
    } finally {
      await stop(registry);
    }
  } finally {
    load.child.kill('SIGKILL');
    agent.destroy();
  }
  writeReport('registry', 'Registry', 'npm run bench:registry', lines.join('\n'));
  await streamSection();
}

/** 6. The event stream, in its own report section (so it can be run alone). */
async function streamSection(): Promise<void> {
  const load = await spawnNode([SCRIPT, 'load'], /LOAD (http:\/\/\S+)/);
  try {
    const lines = await benchStreams({ load: load.url, startRegistry: startRegistryProcess, stop, spawnNode, registerMany, call, log });
    writeReport('registry-stream', 'Registry event stream', 'npm run bench:registry', lines.join('\n'));
  } finally {
    load.child.kill('SIGKILL');
    agent.destroy();
  }
}

/**
 * `tsx bench/registry.ts registrations`: phase 1 alone, printed and not reported (for profiling it: BENCH_CPU_PROF).
 * With BENCH_COMPARE=<another checkout>, the two registries take turns (BENCH_RUNS rounds, default 2) and the
 * medians are set side by side, so a change is measured under the same load as what it changes.
 */
async function registrationsOnly(): Promise<void> {
  const load = await spawnNode([SCRIPT, 'load'], /LOAD (http:\/\/\S+)/);
  const other = process.env.BENCH_COMPARE;
  const rounds = Number(process.env.BENCH_RUNS ?? (other ? 2 : 1));
  const trees = other ? [{ name: 'other', root: other }, { name: 'this', root: undefined }] : [{ name: 'this', root: undefined }];
  const figures = new Map<string, Awaited<ReturnType<typeof benchRegistrations>>[]>();
  const load1 = () => (fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?');
  try {
    for (let round = 0; round < rounds; round++) {
      for (const tree of round % 2 === 0 ? trees : [...trees].reverse()) {
        const reg = await benchRegistrations(load.url, tree.root, load.child.pid);
        figures.set(tree.name, [...(figures.get(tree.name) ?? []), reg]);
        log(`${tree.name}: 0→1,000: ${reg.first.toFixed(0)}/s (${reg.firstCpuUs.toFixed(0)} µs CPU each), 9,000→10,000: ${reg.last.toFixed(0)}/s (${reg.lastCpuUs.toFixed(0)} µs CPU each), all: ${reg.total.toFixed(0)}/s (${reg.cpuUs.toFixed(0)} µs CPU each; driver ${reg.driverCpuUs.toFixed(0)} µs, heartbeat/patch server ${reg.loadCpuUs?.toFixed(0)} µs); load ${load1()}`);
      }
    }
    if (other) {
      // The middle value, or the mean of the middle two (percentile() would take the lower of two runs).
      const med = (name: string, key: 'first' | 'last' | 'total' | 'cpuUs' | 'driverCpuUs') => {
        const sorted = figures.get(name)!.map((f) => f[key]).sort((a, b) => a - b);
        return (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2;
      };
      for (const key of ['first', 'last', 'total', 'cpuUs', 'driverCpuUs'] as const) {
        log(`median ${key}: this ${med('this', key).toFixed(0)}, other ${med('other', key).toFixed(0)}, ratio ${(med('this', key) / med('other', key)).toFixed(2)}`);
      }
    }
  } finally {
    load.child.kill('SIGKILL');
    agent.destroy();
  }
}

const role = process.argv[2];
if (role === 'load') runLoad();
else if (role === 'victim') runVictim(process.argv[3] === 'close');
else
  await (role === 'stream' ? streamSection() : role === 'registrations' ? registrationsOnly() : main()).catch((err) => {
    process.stderr.write(`bench:registry failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
