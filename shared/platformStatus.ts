import fs from 'node:fs';
import path from 'node:path';
/** A launched process's state, as the launcher's status file records it. */
export type ProcessState = 'waiting' | 'starting' | 'up' | 'restarting' | 'stopping' | 'stopped';

/** One process as `platform ps` shows it. */
export interface ProcessStatus {
  /** What it registers as (its prefix in the launcher's output). */
  name: string;
  /** The launcher's id for it (--services). */
  service: string;
  pid: number | null;
  state: ProcessState;
  restarts: number;
  /** When it was last started (ms since the epoch); uptime is counted from here while it runs. */
  startedAt: number | null;
  lastExitCode: number | string | null;
}

/** What the launcher writes to <DATA_DIR>/platform.json whenever a process changes. */
export interface PlatformStatus {
  launcherPid: number;
  startedAt: number;
  registryUrl: string;
  processes: ProcessStatus[];
}

export const STATUS_FILE = 'platform.json';

export function statusFile(dataDir: string): string {
  return path.join(dataDir, STATUS_FILE);
}

/** Written whole (a temporary file renamed over it), so a reader never sees half of it. */
export function writeStatus(file: string, status: PlatformStatus): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(temporary, `${JSON.stringify(status, null, 2)}\n`);
  fs.renameSync(temporary, file);
}

/** The status as written, or undefined when no launcher has written one there. */
export function readStatus(file: string): PlatformStatus | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as PlatformStatus;
}

/** Whether the process is alive (signal 0 tests it without touching it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The status as seen now: a launcher that died (SIGKILL) left its file behind, so its processes are shown as gone. */
export function currentStatus(file: string): (PlatformStatus & { launcherRunning: boolean }) | undefined {
  const status = readStatus(file);
  if (!status) return undefined;
  const launcherRunning = processAlive(status.launcherPid);
  const processes = status.processes.map((p) =>
    p.pid !== null && !processAlive(p.pid) ? { ...p, pid: null, state: 'stopped' as const } : p,
  );
  return { ...status, processes, launcherRunning };
}

/** How long it has run ("3s", "4m 05s", "2h 10m"), for a process that runs. */
export function uptime(process: ProcessStatus, now = Date.now()): string {
  if (process.pid === null || process.startedAt === null) return '';
  const s = Math.max(0, Math.floor((now - process.startedAt) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}
