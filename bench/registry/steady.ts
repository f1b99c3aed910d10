/** 3. CPU and RSS of a real registry process at steady state: 1,000 instances at the 1 s default interval. */
import { setTimeout as sleep } from 'node:timers/promises';
import { procStats } from '../report.ts';
import { call, now, registerMany, type Child } from './cluster.ts';

export interface SteadyFigures {
  cpuPct: number;
  rssMB: number;
  windowS: number;
  /** registry_checks_total{result="ok"} at the end of the window. */
  okChecks: string | undefined;
}

export async function benchSteadyState(registry: Child, load: string): Promise<SteadyFigures> {
  const pid = registry.child.pid!;
  await registerMany(registry.url, load, 30_000, 1000, 32, (i) => `steady-${i % 50}`);
  await sleep(5000);
  const before = procStats(pid);
  const windowS = 15;
  const t0 = now();
  await sleep(windowS * 1000);
  const after = procStats(pid);
  const cpuPct = ((after.cpuSeconds - before.cpuSeconds) / ((now() - t0) / 1000)) * 100;
  const checks = await call('GET', `${registry.url}/metrics`);
  const okChecks = /registry_checks_total\{result="ok"[^}]*\} (\d+)/.exec(checks.data)?.[1];
  return { cpuPct, rssMB: after.rssMB, windowS, okChecks };
}
