import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { PlatformService } from './services.ts';

/**
 * waiting: for the services it starts after; starting: running, not yet up; up: answering (the registry) or
 * registered and up; restarting: exited, started again after a backoff; stopping, stopped: at shutdown.
 */
import type { ProcessState } from '../shared/platformStatus.ts';

export type { ProcessState };

export interface ProcessSpec {
  /** Its prefix and its row in `platform ps`: the name it registers as (imageworker-2 for the second of several). */
  name: string;
  service: PlatformService;
  /** The program and its arguments (node and the entry). */
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Up when this answers (the registry); without it, up means registered and up with its pid. */
  healthUrl?: string;
}

export interface ProcessEvents {
  /** A line it printed (stdout or stderr). */
  line(process: ServiceProcess, line: string): void;
  /** A notice for the person (exits and restarts). */
  notice(text: string): void;
  changed(): void;
}

const MAX_RESTART_DELAY_MS = 30_000;
/** A child that ran this long without crashing starts its backoff from the beginning again. */
const STABLE_AFTER_MS = 60_000;

/** One service's process: started, followed line by line, restarted with capped exponential backoff when it crashes. */
export class ServiceProcess {
  state: ProcessState = 'waiting';
  restarts = 0;
  startedAt?: number;
  lastExitCode?: number | string;
  private child?: ChildProcess;
  private restartTimer?: NodeJS.Timeout;
  private stopping = false;
  private exited?: Promise<void>;

  constructor(
    readonly spec: ProcessSpec,
    private readonly events: ProcessEvents,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.stopping || this.running) return;
    const child = spawn(this.spec.command, this.spec.args, {
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C reaches only the launcher, which then stops services in order.
      detached: true,
    });
    this.child = child;
    this.startedAt = Date.now();
    this.state = 'starting';
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.events.line(this, line));
    }
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    child.once('error', (err) => this.events.notice(`${this.name} could not start: ${err.message}`));
    child.once('close', (code, signal) => this.onExit(code ?? signal ?? 'unknown'));
    this.events.changed();
  }

  private onExit(code: number | string): void {
    this.lastExitCode = code;
    if (this.stopping) {
      this.state = 'stopped';
      this.events.changed();
      return;
    }
    if (this.startedAt && Date.now() - this.startedAt > STABLE_AFTER_MS) this.restarts = 0;
    const delay = Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** this.restarts);
    this.restarts++;
    this.state = 'restarting';
    this.events.notice(`${this.name} exited (${code}); restarting in ${(delay / 1000).toFixed(1)} s (restart #${this.restarts})`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.start();
      this.events.notice(`${this.name} restarted (pid ${this.child?.pid})`);
    }, delay);
    this.events.changed();
  }

  /** Marks it up (answering, or registered and up) or back to starting (it went down while running). */
  markUp(up: boolean): void {
    const next = up ? 'up' : 'starting';
    if (!this.running || this.stopping || this.state === next) return;
    this.state = next;
    this.events.changed();
  }

  /** Sends the signal (it deregisters, drains and flushes); resolves once it has exited. */
  stop(signal: NodeJS.Signals): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (!this.running) {
      this.state = 'stopped';
      this.events.changed();
      return Promise.resolve();
    }
    this.state = 'stopping';
    this.events.changed();
    this.signal(signal);
    return this.exited!;
  }

  /** Never forgets a child (it has its own process group, so nothing else would end it). */
  kill(): void {
    if (this.running) this.signal('SIGKILL');
  }

  private signal(signal: NodeJS.Signals): void {
    try {
      this.child!.kill(signal);
    } catch {
      // already gone
    }
  }
}
