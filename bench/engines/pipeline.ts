/**
 * One run of the whole pipeline as processes on one set of engines: a registry of its own, M masters, S storage
 * nodes and the workers; the images uploaded straight to the masters in turn, timed from the first upload to the
 * last task done, with every service's CPU and the engines' own (PostgreSQL's processes, Swift's servers) over it.
 */
import os from 'node:os';
import { startProcess, startRegistry, tempDir, type Proc } from '../../harness/processes.ts';
import { waitForProviders } from '../../test/fixtures/pipeline.ts';
import type { Postgres } from '../../harness/postgres.ts';
import type { Swift } from '../../harness/swift.ts';
import { uploadAll, uploadToMaster, waitDone, waitOne } from '../images/drive.ts';
import { postgresCpu, swiftCpu, treeCpu } from './cpu.ts';

export interface Setup {
  /** A short name for the tables. */
  name: string;
  masters: number;
  storageNodes: number;
  /** On PostgreSQL (TASK_STORE=postgres) and S3 (BLOB_STORE=s3, Swift), or the embedded defaults (SQLite, local disk). */
  engines?: { pg: Postgres; swift: Swift; database: string; bucket: string };
}

export interface PipelineRun {
  setup: Setup;
  images: number;
  seconds: number;
  perSecond: number;
  /** CPU seconds over the measured block, by service (registry, masters, storage nodes, workers, postgres, swift-*). */
  cpu: Record<string, number>;
  loadAtStart: number;
  loadAtEnd: number;
}

// Info, not debug: the harness waits for the "listening on" line, which is info.
const QUIET = { LOG_LEVEL: 'info' };

/** Every CPU reading of one run, by the names the tables use. */
function cpuNow(groups: Record<string, Proc[]>, engines: Setup['engines']): Record<string, number> {
  const cpu: Record<string, number> = {};
  for (const [name, procs] of Object.entries(groups)) cpu[name] = procs.reduce((sum, p) => sum + treeCpu(p.child.pid!), 0);
  if (engines) {
    cpu.postgres = postgresCpu(engines.pg);
    for (const [kind, seconds] of Object.entries(swiftCpu(engines.swift))) cpu[`swift-${kind}`] = seconds;
  }
  return cpu;
}

export async function runPipeline(setup: Setup, images: Buffer[], workers: number, inFlight: number): Promise<PipelineRun> {
  const registry = await startRegistry(QUIET);
  // Kept apart for the stop: workers first (they release their claims at the masters), the registry last (the others deregister there).
  const launched = { workers: [] as Proc[], services: [] as Proc[] };
  try {
    const { engines } = setup;
    const taskEnv: Record<string, string> = engines ? { TASK_STORE: 'postgres', DATABASE_URL: await engines.pg.createDatabase(engines.database) } : {};
    const blobEnv: Record<string, string> = engines ? engines.swift.blobStoreEnv(engines.bucket) : {};
    const start = (script: string, env: Record<string, string>) =>
      startProcess(script, { env: { ...QUIET, REGISTRY_URL: registry.url, ...env } }).then((p) => {
        (script === 'cmd/worker.ts' ? launched.workers : launched.services).push(p);
        return p;
      });
    // Storage nodes on the local disk each have a folder of their own (as on their own machines); on S3 they share the bucket.
    // Masters start at once even on PostgreSQL: their migrations take turns under an advisory lock.
    const [storage, masters, workerProcs] = await Promise.all([
      Promise.all(Array.from({ length: setup.storageNodes }, () => start('cmd/storage.ts', { DATA_DIR: tempDir('bench-storage-'), ...blobEnv }))),
      Promise.all(Array.from({ length: setup.masters }, () => start('cmd/master.ts', { DATA_DIR: tempDir('bench-master-'), ...taskEnv }))),
      Promise.all(Array.from({ length: workers }, () => start('cmd/worker.ts', {}))),
    ]);
    await Promise.all([
      ...masters.map((m) => waitForProviders(m, 'imagestorage', setup.storageNodes, 30_000)),
      ...workerProcs.flatMap((w) => [waitForProviders(w, 'imagemaster', setup.masters, 30_000), waitForProviders(w, 'imagestorage', setup.storageNodes, 30_000)]),
    ]);
    // Warm-up images all the way through each master (and so every path runs once before the clock starts).
    const send = (png: Buffer, i: number) => uploadToMaster(masters[i % masters.length].url, png);
    for (let i = 0; i < 2 * Math.max(setup.masters, setup.storageNodes); i++) await waitOne(masters[i % masters.length].url, await send(images[i % images.length], i));
    const warmed = (await waitDone(masters[0].url, 50)).done ?? 0;

    const groups = { registry: [registry], masters, storage, workers: workerProcs };
    const loadAtStart = os.loadavg()[0];
    const before = cpuNow(groups, engines);
    const started = performance.now();
    await uploadAll(images, inFlight, send);
    const counts = await waitDone(masters[0].url, 50);
    const seconds = (performance.now() - started) / 1000;
    const after = cpuNow(groups, engines);
    if ((counts.done ?? 0) !== warmed + images.length) throw new Error(`${setup.name}: ${counts.done} tasks done, expected ${warmed + images.length}`);
    const cpu = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
    return { setup, images: images.length, seconds, perSecond: images.length / seconds, cpu, loadAtStart, loadAtEnd: os.loadavg()[0] };
  } finally {
    const stop = (group: Proc[]) => Promise.all(group.map((p) => p.stop().catch(() => undefined)));
    await stop(launched.workers);
    await stop(launched.services);
    await stop([registry]);
  }
}
