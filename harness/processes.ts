/**
 * The process harness that the tests (test/) and the benchmarks (bench/) share on purpose: our services
 * run as real processes on ephemeral ports, and everything waits for a condition, never for a time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Proc {
  child: ChildProcess;
  /** The URL from the "listening on http://…" line. */
  url: string;
  output(): string;
  /** Sends a signal and waits for the exit; resolves with the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
  exited: Promise<number | string>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  args?: string[];
  /** Pattern whose first group is the URL; default: "listening on (http://…)". */
  ready?: RegExp;
  timeoutMs?: number;
  /** Options for node itself, before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

let distChecked = false;

/** dist/ built by platform/build.mjs (or found current), once per process; a failed build throws. */
export function ensureBuilt(stdio: 'pipe' | 'inherit' = 'pipe'): void {
  if (distChecked) return;
  execFileSync(process.execPath, [path.join(ROOT, 'platform/build.mjs')], { cwd: ROOT, stdio });
  distChecked = true;
}

/**
 * A service's bundle as `npm start` runs it, `dist/cmd/<name>.js`, with dist/ built on the first call of this
 * process (ensureBuilt): a benchmark starts dozens of services from one build.
 */
export function builtEntry(name: string): string {
  ensureBuilt();
  return path.join('dist/cmd', `${name}.js`);
}

/** Starts `node --import tsx <script>` (a built `.js` without tsx, as `npm start` runs it) and waits until it says where it listens. */
export async function startProcess(script: string, options: StartOptions = {}): Promise<Proc> {
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...loader, path.resolve(ROOT, script), ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'debug', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let output = '';
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  const ready = options.ready ?? /listening on (http:\/\/\S+)/;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within ${options.timeoutMs ?? 30000} ms:\n${output}`)), options.timeoutMs ?? 30000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] ?? '');
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls until fn returns a truthy value (or throws on timeout with the last error). */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

export function tempDir(prefix = 'switchboard-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Fast registry settings for tests. */
export const FAST_REGISTRY_ENV = {
  HEARTBEAT_INTERVAL_MS: '150',
  HEARTBEAT_TIMEOUT_MS: '300',
  HEARTBEAT_FAILURES: '3',
  NOTIFY_TIMEOUT_MS: '500',
};

export async function startRegistry(env: Record<string, string> = {}, dataDir = tempDir('registry-')): Promise<Proc & { dataDir: string }> {
  const proc = await startProcess('cmd/registry.ts', { env: { ...FAST_REGISTRY_ENV, DATA_DIR: dataDir, ...env } });
  return Object.assign(proc, { dataDir });
}

/** A port that was free a moment ago (bind port 0, read it, close), for processes that must come back on the same port. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as import('node:net').AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

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
