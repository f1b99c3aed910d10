/**
 * The image pipeline as processes, driven from outside (bench:images): the services as `npm start` runs
 * them (registry, storage, master, one worker, frontend), or the same hops in bare node:http, the floor.
 * One run: throughput with uploads 8 at a time, CPU seconds by service, idle upload-to-done latency,
 * sequential uploads accepted per second, large uploads straight to the master.
 */
import { builtEntry, startProcess, tempDir, type Proc } from '../../harness/processes.ts';
import { platformService } from '../../platform/services.ts';
import { IMAGE_HEAP_GROWTH } from '../../imageservice/heapGrowth.ts';
import { percentile, procStats } from '../report.ts';
import { upload, uploadAll, uploadToMaster, waitDone, waitOne } from './drive.ts';

export const IDLE_SAMPLES = Number(process.env.BENCH_IDLE_SAMPLES ?? 25);
export const SEQUENTIAL_UPLOADS = 100;
/** Large uploads timed in each main pipeline run, one at a time, each after the last one's task is done. */
export const LARGE_UPLOADS = 6;
/** Uploads open at once in the throughput run (48 at once made the registry miss the master's health checks on a loaded machine). */
export const UPLOADS_IN_FLIGHT = 8;

/** BENCH_CPU_PROF=<dir>: each service of the pipeline writes a V8 CPU profile under <dir>/<service> when it stops. */
const profiled = (service: string) => (process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/${service}`] : []);

/** A change from the defaults, for the side-by-side rows: the worker's environment, the image services' heap growth left to V8, or the bare hops. */
export interface Variant {
  workerEnv?: Record<string, string>;
  v8HeapGrowth?: boolean;
  /** The pipeline's floor instead of the services: the same hops in bare node:http. */
  bare?: boolean;
}

/** The side-by-side row of the pipeline's floor. */
export const BARE = 'the same hops in bare node:http (bench/images/bareHop.ts)';

/** On node's command line, this leaves the heap's growth to V8 (imageservice/heapGrowth.ts). */
export const V8_HEAP_GROWTH = '--heap-growing-percent=0';
const IMAGE_SERVICES = ['storage', 'master', 'worker', 'frontend'];
/** The services of a run, in the order of its CPU figures. */
export const SERVICE_NAMES = ['registry', 'imagestorage', 'imagemaster', 'imageworker', 'imagefrontend'];

/** A service as `npm start` runs it: its bundle, with the node options the launcher gives it (platform/services.ts). */
function startBuilt(id: string, env: Record<string, string>, variant: Variant = {}): Promise<Proc> {
  const nodeOptions = [...(platformService(id).nodeOptions ?? []), ...(variant.v8HeapGrowth && IMAGE_SERVICES.includes(id) ? [V8_HEAP_GROWTH] : [])];
  return startProcess(builtEntry(id), { nodeArgs: [...nodeOptions, ...profiled(id)], env: { LOG_LEVEL: 'info', ...env } });
}

/** The same hops in bare node:http (bench/images/bareHop.ts), with the image services' heap growth: the pipeline's floor. */
function startBare(role: string, env: Record<string, string>): Promise<Proc> {
  const ready = role === 'worker' ? /^()ready$/m : undefined;
  return startProcess('bench/images/bareHop.ts', { args: [role], nodeArgs: [IMAGE_HEAP_GROWTH, ...profiled(`bare-${role}`)], env, ready });
}

/** Starts the pipeline into `procs`, in the order of SERVICE_NAMES (the bare hops have no registry); resolves with the master and the frontend. */
async function startPipeline(procs: (Proc | undefined)[], variant: Variant): Promise<{ master: Proc; frontend: Proc }> {
  if (variant.bare) {
    procs.push(undefined);
    const storage = await startBare('storage', { DATA_DIR: tempDir('bench-bare-') });
    procs.push(storage);
    const master = await startBare('master', { STORAGE_URL: storage.url });
    procs.push(master);
    procs.push(await startBare('worker', { STORAGE_URL: storage.url, MASTER_URL: master.url }));
    const frontend = await startBare('frontend', { MASTER_URL: master.url });
    procs.push(frontend);
    return { master, frontend };
  }
  // The registry at its defaults (heartbeats every second), as npm start runs it, not the tests' fast checks.
  const registry = await startBuilt('registry', { DATA_DIR: tempDir('bench-registry-') });
  procs.push(registry);
  const storage = await startBuilt('storage', { REGISTRY_URL: registry.url, DATA_DIR: tempDir('bench-storage-') }, variant);
  procs.push(storage);
  const master = await startBuilt('master', { REGISTRY_URL: registry.url, DATA_DIR: tempDir('bench-master-') }, variant);
  procs.push(master);
  procs.push(await startBuilt('worker', { REGISTRY_URL: registry.url, ...variant.workerEnv }, variant));
  const frontend = await startBuilt('frontend', { REGISTRY_URL: registry.url }, variant);
  procs.push(frontend);
  return { master, frontend };
}

export async function pipeline(images: Buffer[], variant: Variant = {}, large?: Buffer) {
  const procs: (Proc | undefined)[] = [];
  try {
    const { master, frontend } = await startPipeline(procs, variant);
    // Ready when warm-up images go all the way through (and every path has run once).
    for (let i = 0; i < 4; i++) await waitOne(master.url, await upload(frontend.url, images[i % images.length]));

    const cpuOf = () => procs.map((p) => (p ? procStats(p.child.pid!).cpuSeconds : 0));
    const cpuBefore = cpuOf();
    const started = performance.now();
    await uploadAll(images, UPLOADS_IN_FLIGHT, (png) => upload(frontend.url, png));
    await waitDone(master.url, 50);
    const seconds = (performance.now() - started) / 1000;
    const cpuByService = cpuOf().map((cpu, i) => cpu - cpuBefore[i]);

    const latencies: number[] = [];
    for (let i = 0; i < IDLE_SAMPLES; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      await waitOne(master.url, await upload(frontend.url, images[i % images.length]));
      latencies.push(performance.now() - t0);
    }
    await waitDone(master.url, 50);
    const t0 = performance.now();
    for (let i = 0; i < SEQUENTIAL_UPLOADS; i++) await upload(frontend.url, images[i % images.length]);
    const sequentialRate = SEQUENTIAL_UPLOADS / ((performance.now() - t0) / 1000);
    await waitDone(master.url, 50);
    // A large image straight to the master (as the CLI sends it): the master streams it into storage as it arrives.
    const largeMs: number[] = [];
    for (let i = 0; large && i < LARGE_UPLOADS; i++) {
      const started = performance.now();
      const id = await uploadToMaster(master.url, large);
      largeMs.push(performance.now() - started);
      await waitOne(master.url, id);
    }
    return { rate: images.length / seconds, cpuByService, p50: percentile(latencies, 50), p99: percentile(latencies, 99), sequentialRate, largeMs };
  } finally {
    for (const p of procs.reverse()) await p?.stop().catch(() => undefined);
  }
}
