/** 1. Registrations/s for 0→1,000 and 9,000→10,000, with the registry's CPU per registration. */
import { setTimeout as sleep } from 'node:timers/promises';
import { procStats } from '../report.ts';
import { call, now, register, registerMany, registration, startRegistryProcess, stop } from './cluster.ts';

export interface RegistrationFigures {
  first: number;
  last: number;
  total: number;
  elapsedS: number;
  interval: number;
  /** Registry CPU per registration (µs) in the first and last blocks. */
  firstCpuUs: number;
  lastCpuUs: number;
  /** Registry CPU per registration (µs) over all 10,000. */
  cpuUs: number;
  /** This driver's CPU per registration (µs), and the load process's when its pid is given: they share the cores. */
  driverCpuUs: number;
  loadCpuUs?: number;
}

/** Registrations (then deregistrations) before the measured blocks. */
export const WARM_UP_REGISTRATIONS = 6000;

/** `root`: the checkout whose registry is measured (bench/registry.ts registrations compares two). */
export async function benchRegistrations(load: string, root?: string, loadPid?: number): Promise<RegistrationFigures> {
  // A 30 s interval: this phase times the registration path; checking cost is phase 3's subject.
  const interval = 30_000;
  const registry = await startRegistryProcess({ HEARTBEAT_INTERVAL_MS: String(interval) }, root);
  try {
    // Warm-up: 6,000 throwaway registrations, then deregistered, so the JIT has compiled the path and
    // the registry holds 0 instances again when the measured 0→1,000 block starts.
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < WARM_UP_REGISTRATIONS) {
          const i = next++;
          ids.push(await register(registry.url, registration(load, `warm/${i}`, 'warm-up')));
        }
      }),
    );
    for (const id of ids) await call('DELETE', `${registry.url}/services/${id}`);
    const { data: empty } = await call('GET', `${registry.url}/health`);
    if (empty.instances !== 0) throw new Error(`the warm-up left ${empty.instances} instances`);
    await sleep(1000);
    const cpu = new Map<number, number>([[0, procStats(registry.child.pid!).cpuSeconds]]);
    const driverBefore = process.cpuUsage();
    const loadBefore = loadPid === undefined ? 0 : procStats(loadPid).cpuSeconds;
    const started = now();
    const done = await registerMany(registry.url, load, 0, 10_000, 32, (i) => `svc-${i % 100}`, (k) => {
      if (k === 1000 || k === 9000 || k === 10_000) cpu.set(k, procStats(registry.child.pid!).cpuSeconds);
    });
    const elapsedS = (now() - started) / 1000;
    const driver = process.cpuUsage(driverBefore);
    const loadCpuUs = loadPid === undefined ? undefined : ((procStats(loadPid).cpuSeconds - loadBefore) / 10_000) * 1e6;
    const rate = (a: number, b: number) => (b - a) / ((done[b - 1] - (a === 0 ? started : done[a - 1])) / 1000);
    const cpuUs = (a: number, b: number) => ((cpu.get(b)! - cpu.get(a)!) / (b - a)) * 1e6;
    const { data } = await call('GET', `${registry.url}/health`);
    if (data.instances !== 10_000) throw new Error(`registry holds ${data.instances} instances, not 10,000`);
    return {
      first: rate(0, 1000),
      last: rate(9000, 10_000),
      total: 10_000 / elapsedS,
      elapsedS,
      interval,
      firstCpuUs: cpuUs(0, 1000),
      lastCpuUs: cpuUs(9000, 10_000),
      cpuUs: cpuUs(0, 10_000),
      driverCpuUs: (driver.user + driver.system) / 10_000,
      loadCpuUs,
    };
  } finally {
    await stop(registry);
  }
}
