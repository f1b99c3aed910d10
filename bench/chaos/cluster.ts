/**
 * The chaos run's processes: each service is started as `node --import tsx <entry>` on a fixed
 * port (so a restarted one comes back at the same URL), with its output appended to a file in the
 * run directory, and can be SIGKILLed, SIGSTOPped, SIGCONTed or restarted by the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../harness/processes.ts';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ManagedOptions {
  /** A short name for the run's log ("master", "worker-3"). */
  name: string;
  entry: string;
  args?: string[];
  env: Record<string, string>;
  logDir: string;
  /** Pattern whose first group is the URL; default "listening on (http://…)". */
  ready?: RegExp;
  timeoutMs?: number;
}

/** One service process that the run may kill and start again (with the same settings and port). */
export class Managed {
  child?: ChildProcess;
  url = '';
  /** The ready line's first group (the URL, or whatever the pattern captured). */
  readyValue = '';
  starts = 0;
  private exitedPromise?: Promise<number | string>;

  constructor(readonly options: ManagedOptions) {}

  get name(): string {
    return this.options.name;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<this> {
    const { entry, args = [], env, logDir, name } = this.options;
    const out = fs.createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
    out.write(`--- start ${++this.starts} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(ROOT, entry), ...args], {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(child);
    this.exitedPromise = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        live.delete(child);
        out.end(`--- exit ${code ?? signal}\n`);
        resolve(code ?? signal ?? -1);
      }),
    );
    const ready = this.options.ready ?? /listening on (http:\/\/\S+)/;
    let head = '';
    const value = await new Promise<string>((resolve, reject) => {
      const timeoutMs = this.options.timeoutMs ?? 60_000;
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${head.slice(-2000)}`)), timeoutMs);
      const onData = (chunk: Buffer) => {
        out.write(chunk);
        if (head.length < 1 << 20) {
          head += chunk.toString();
          const match = ready.exec(head);
          if (match) {
            clearTimeout(timer);
            head = '\u0000'.repeat(1 << 20); // stop scanning
            resolve(match[1] ?? '');
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      void this.exitedPromise!.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before it was ready:\n${head.slice(-2000)}`));
      });
    });
    this.readyValue = value;
    if (value.startsWith('http')) this.url = value;
    return this;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child!.kill(signal);
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exitedPromise;
  }

  /** A graceful stop (SIGTERM, then SIGKILL after timeoutMs); resolves with the exit code or signal. */
  async stop(timeoutMs = 20_000): Promise<number | string | undefined> {
    if (!this.running) return this.exitedPromise;
    this.child!.kill('SIGCONT');
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    const code = await this.exitedPromise;
    clearTimeout(timer);
    return code;
  }
}
