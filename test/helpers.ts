import { spawn, type ChildProcess } from 'node:child_process';
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
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts `node --import tsx <script>` and waits until it says where it listens. */
export async function startProcess(script: string, options: StartOptions = {}): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(ROOT, script), ...(options.args ?? [])], {
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

export async function startFixture(name: string, registryUrl: string, requires: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  return startProcess('test/fixtures/service.ts', {
    env: { NAME: name, REQUIRES: requires.join(','), REGISTRY_URL: registryUrl, ...env },
  });
}

export async function getJson<T = any>(url: string, init?: RequestInit): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

export async function providersOf(proc: Proc): Promise<Record<string, string[]>> {
  return (await getJson(`${proc.url}/debug/providers`)).body.providers;
}
