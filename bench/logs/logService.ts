/** The log service under measure: started as the launcher starts it, sampled from /proc, its metrics and its files read back. */
import fs from 'node:fs';
import path from 'node:path';
import { procStats } from '../report.ts';
import { startProcess, tempDir, type Proc } from '../../harness/processes.ts';
import { platformService } from '../../platform/services.ts';

/** Samples a process's CPU and RSS every 100 ms. */
export class Sampler {
  peakRssMB = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
    this.sample();
  }
  sample(): { cpuSeconds: number; rssMB: number } {
    const stats = procStats(this.pid);
    this.peakRssMB = Math.max(this.peakRssMB, stats.rssMB);
    return stats;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

export type DiskCount = Map<string, { distinct: Set<number>; duplicates: number }>;

/** Distinct i per tag on disk, and lines seen more than once. */
export function onDisk(dataDir: string): DiskCount {
  const byTag: DiskCount = new Map();
  for (const name of fs.readdirSync(dataDir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of fs.readFileSync(path.join(dataDir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const entry = JSON.parse(line) as { tag?: string; i?: number };
      if (entry.tag === undefined || entry.i === undefined) continue;
      let tag = byTag.get(entry.tag);
      if (!tag) byTag.set(entry.tag, (tag = { distinct: new Set(), duplicates: 0 }));
      if (tag.distinct.has(entry.i)) tag.duplicates++;
      else tag.distinct.add(entry.i);
    }
  }
  return byTag;
}

export async function startLog(env: Record<string, string>): Promise<Proc & { dataDir: string }> {
  const dataDir = tempDir('bench-logs-');
  // Started as the launcher starts it (platform/services.ts), node options included.
  // BENCH_LOG_NODE_ARGS adds node flags for a look inside (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", "--trace-gc").
  const extra = process.env.BENCH_LOG_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const proc = await startProcess('cmd/logservice.ts', {
    nodeArgs: [...(platformService('logservice').nodeOptions ?? []), ...extra],
    env: { REGISTRY_URL: 'http://127.0.0.1:9', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
  });
  return Object.assign(proc, { dataDir });
}

export async function metricSum(url: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(label)) sum += Number(line.split(' ').pop());
  return sum;
}
