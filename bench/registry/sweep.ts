/** 2. One full health sweep of 1,000 instances (the registry in this process, so sweep() can be timed). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerMany } from './cluster.ts';

export interface SweepFigures {
  /** The first sweep, on new connections (ms). */
  cold: number;
  /** Five more sweeps: their times and the CPU each used (ms). */
  warm: number[];
  warmCpu: number[];
}

export async function benchSweep(load: string): Promise<SweepFigures> {
  const { RegistryServer } = await import('../../registry/server.ts');
  const { registryDefaults } = await import('../../registry/config.ts');
  const { createLogger } = await import('../../shared/logger.ts');
  const server = new RegistryServer({
    ...registryDefaults,
    port: 0,
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sweep-')),
    heartbeatIntervalMs: 3_600_000,
    logger: createLogger('registry', { level: 'warn' }),
  });
  await server.start();
  try {
    await registerMany(server.url, load, 20_000, 1000, 32, () => 'swept');
    let started = performance.now();
    await server.sweep();
    const cold = performance.now() - started;
    const warm: number[] = [];
    const warmCpu: number[] = [];
    for (let i = 0; i < 5; i++) {
      const cpu = process.cpuUsage();
      started = performance.now();
      await server.sweep();
      warm.push(performance.now() - started);
      const used = process.cpuUsage(cpu);
      warmCpu.push((used.user + used.system) / 1000);
    }
    const failing = [...server.registry.all()].filter((r) => r.consecutiveFailures > 0).length;
    if (failing) throw new Error(`${failing} checks failed during the sweep`);
    return { cold, warm, warmCpu };
  } finally {
    await server.stop();
  }
}
