/**
 * The driver's processes and calls: the roles and real registries as child processes, registrations
 * sent many at a time, and the load process's receipts read back.
 */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../../harness/processes.ts';
import { callThrough } from '../call.ts';
import { percentile } from '../report.ts';
import type { Receipt } from './roles.ts';

/** The script whose sub-commands (`load`, `victim`) run the roles. */
export const SCRIPT = path.join(ROOT, 'bench', 'registry.ts');
/** Wall-clock time with sub-millisecond precision, comparable across processes. */
export const now = () => performance.timeOrigin + performance.now();

export const ms = (v: number) => `${v.toFixed(1)} ms`;
export const median = (values: number[]) => percentile(values, 50);

export interface Child {
  child: ChildProcess;
  url: string;
}

/** Spawns a node process and waits for the line `<tag> <url>`; its output is drained (never left to fill a pipe). */
export async function spawnNode(args: string[], tag: RegExp, env: Record<string, string> = {}, cwd = ROOT): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let head = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start:\n${head}`)), 60_000);
    const onData = (chunk: Buffer) => {
      if (head.length < 100_000) head += chunk.toString();
      const match = tag.exec(head);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}):\n${head}`)));
  });
  return { child, url };
}

/** BENCH_CPU_PROF=<folder>: each registry writes a V8 CPU profile there when it stops (node --cpu-prof). */
const profiling = () => (process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : []);

/** A registry process; `root` is the checkout it runs from (another one to compare two versions side by side). */
export async function startRegistryProcess(env: Record<string, string>, root = ROOT): Promise<Child> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-registry-'));
  return spawnNode([...profiling(), 'cmd/registry.ts'], /registry listening on (http:\/\/\S+)/, { PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env }, root);
}

export async function stop(proc: Child): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
export const call = callThrough(agent);

export function registration(load: string, key: string, name: string, requiredServices: string[] = []) {
  const url = `${load}/${key}`;
  return { serviceName: name, serviceURL: url, heartbeatURL: `${url}/heartbeat`, serviceUpdateURL: `${url}/services`, requiredServices };
}

export async function register(registry: string, body: unknown): Promise<string> {
  const { status, data } = await call('POST', `${registry}/services`, body);
  if (status !== 200) throw new Error(`registration answered ${status}: ${JSON.stringify(data)}`);
  return data.instanceId as string;
}

/**
 * Registers `count` instances with `concurrency` in flight. `onCompleted(k)` runs after the k-th
 * completion (in completion order); returns the time of each completion.
 */
export async function registerMany(
  registry: string,
  load: string,
  from: number,
  count: number,
  concurrency: number,
  name: (i: number) => string,
  onCompleted?: (k: number) => void,
): Promise<number[]> {
  const done: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      await register(registry, registration(load, `i/${from + i}`, name(from + i)));
      done.push(now());
      onCompleted?.(done.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return done;
}

/** How many patches the load process has received (cheap: it doesn't serialise them). */
export async function receiptCount(load: string): Promise<number> {
  return Number((await call('GET', `${load}/_count`)).data);
}

async function receiptsSince(load: string, since: number): Promise<{ total: number; receipts: Receipt[] }> {
  return (await call('GET', `${load}/_receipts?since=${since}`)).data;
}

/** Polls the load process until `predicate` holds for the receipts since `since`. */
export async function waitReceipts(load: string, since: number, predicate: (r: Receipt[]) => boolean, timeoutMs = 30_000): Promise<Receipt[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { receipts } = await receiptsSince(load, since);
    if (predicate(receipts)) return receipts;
    if (Date.now() > deadline) throw new Error(`timed out waiting for patches (${receipts.length} so far)`);
    await sleep(20);
  }
}
