/** `npm start` measured from outside: time to the table, memory summed over its process tree, warnings, Ctrl-C. */
import fs from 'node:fs';
import path from 'node:path';
import { alive, descendants, freePort, launch, ROOT, tempDir, waitFor, type Launched } from '../../harness/processes.ts';
import { procStats } from '../report.ts';

export interface ProcessMemory {
  pid: number;
  /** Its command line, shortened (node dist/cmd/registry.js). */
  command: string;
  rssMB: number;
  /** Proportional set size: shared pages divided among their sharers, so the sum is what the tree really holds. */
  pssMB: number;
}

export interface Footprint {
  /** From spawning `npm start` to the "Switchboard is running" table. */
  tableMs: number;
  /** CPU seconds the tree had used by then: what the start costs, whatever else the machine is doing. */
  cpuSecondsToTable: number;
  processes: ProcessMemory[];
  rssMB: number;
  pssMB: number;
  /** Lines at WARN or ERROR printed from the start until the table and the settling after it. */
  warnings: string[];
  output(): string;
  launched: Launched;
  registryUrl: string;
  dataDir: string;
}

function kB(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** RSS and PSS of a process from /proc (Linux); undefined when it has gone. */
export function memoryOf(pid: number): ProcessMemory | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    let pss = 0;
    try {
      pss = kB(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
    } catch {
      // older kernels: RSS alone
    }
    let argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // npm sets its process title, which leaves one string with spaces in place of the arguments.
    if (argv.length === 1) argv = argv[0].split(' ');
    const shown = (arg: string, i: number) => (arg.startsWith(ROOT) ? path.relative(ROOT, arg) : i === 0 || path.isAbsolute(arg) ? path.basename(arg) : arg);
    const command = argv.map(shown).join(' ').slice(0, 90);
    return { pid, command, rssMB: kB(status, 'VmRSS') / 1024, pssMB: pss / 1024 };
  } catch {
    return undefined;
  }
}

/** The process and everything below it. */
export function treeMemory(pid: number): ProcessMemory[] {
  return [pid, ...descendants(pid)].map(memoryOf).filter((m): m is ProcessMemory => m !== undefined);
}

const WARNING = /^\[[^\]]+\] \S+ (warn|error) /m;

/** Starts `npm start` on ephemeral ports, waits for the table, lets it settle and measures it (the largest of `samples` sums). */
export async function measureStart(options: { settleMs?: number; samples?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Footprint> {
  const dataDir = tempDir('footprint-');
  const registryPort = await freePort();
  const started = performance.now();
  // detached: its own process group, so a signal to the group reaches it as a Ctrl-C would.
  const launched = launch('npm', ['start', '--', '--ephemeral', '--port', `registry=${registryPort}`, '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    detached: true,
  });
  await waitFor(() => launched.output().includes('Switchboard is running'), 'the platform table', 180_000, 10);
  const tableMs = performance.now() - started;
  const cpuSecondsToTable = [launched.child.pid!, ...descendants(launched.child.pid!)].reduce((total, pid) => {
    try {
      return total + procStats(pid).cpuSeconds;
    } catch {
      return total; // gone meanwhile
    }
  }, 0);
  // Memory settles after the start (lazy modules, first requests): a measured pause, not a wait for a condition.
  await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 3000));
  let best: ProcessMemory[] = [];
  for (let i = 0; i < (options.samples ?? 3); i++) {
    const now = treeMemory(launched.child.pid!);
    if (sum(now, 'rssMB') > sum(best, 'rssMB')) best = now;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const warnings = launched.output().split('\n').filter((line) => WARNING.test(line));
  return {
    tableMs,
    cpuSecondsToTable,
    processes: best,
    rssMB: sum(best, 'rssMB'),
    pssMB: sum(best, 'pssMB'),
    warnings,
    output: launched.output,
    launched,
    registryUrl: `http://127.0.0.1:${registryPort}`,
    dataDir,
  };
}

/** Ctrl-C (SIGINT to the process group, as a terminal sends it): the time until every process of the tree has gone. */
export async function measureStop(footprint: Footprint, timeoutMs = 30_000): Promise<{ stopMs: number; left: number[]; code: number | null; signal: string | null }> {
  const pids = footprint.processes.map((p) => p.pid);
  const started = performance.now();
  process.kill(-footprint.launched.child.pid!, 'SIGINT');
  try {
    await waitFor(() => pids.every((pid) => !alive(pid)), 'every process to exit', timeoutMs, 10);
  } catch {
    // reported as left below
  }
  const stopMs = performance.now() - started;
  const code = await footprint.launched.exited;
  return { stopMs, left: pids.filter(alive), code, signal: footprint.launched.child.signalCode };
}

export function sum(processes: ProcessMemory[], field: 'rssMB' | 'pssMB'): number {
  return processes.reduce((total, p) => total + p[field], 0);
}
