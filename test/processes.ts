import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { waitFor } from './helpers.ts';

/** Every process below pid (children, grandchildren, …), read from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone while we looked
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    for (const child of children.get(stack.pop()!) ?? []) {
      out.push(child);
      stack.push(child);
    }
  }
  return out;
}

export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface Launched {
  child: import('node:child_process').ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** The processes below it once the platform is up (remembered, so a test can check they are gone). */
  waitUntilRunning(timeoutMs?: number): Promise<number[]>;
  /** SIGKILLs it and everything it started, whatever state it is in (for t.after). */
  kill(): void;
}

/** Starts the platform launcher (a command such as `npm start -- …` or `node … cmd/platform.ts …`) and follows its output. */
export function launch(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; detached?: boolean }): Launched {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let pids: number[] = [];
  return {
    child,
    output: () => output,
    exited,
    async waitUntilRunning(timeoutMs = 180_000) {
      await waitFor(() => output.includes('Switchboard is running'), 'the platform table', timeoutMs, 100);
      pids = descendants(child.pid!);
      return pids;
    },
    kill() {
      for (const pid of [child.pid!, ...pids, ...descendants(child.pid!)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}
