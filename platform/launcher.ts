import path from 'node:path';
import { spawn } from 'node:child_process';
import { createConcurrently, Logger, LogError, LogExit, LogOutput, type Command } from 'concurrently';
import { RegistryClient } from '../registry/client.ts';
import type { InstanceView } from '../registry/protocol.ts';
import { PLATFORM_SERVICES, platformService, type PlatformService } from './services.ts';
import { table } from '../shared/cli.ts';

export interface LaunchOptions {
  /** Service ids to run (see PLATFORM_SERVICES). */
  services: string[];
  workers: number;
  /** Registry replicas (REGISTRY_STORE=etcd, ETCD_ENDPOINTS from the environment) on consecutive ports; 1: one registry as configured. */
  registryReplicas?: number;
  dataDir: string;
  host: string;
  /** Port per service id; a missing one uses the service's default. 0 means ephemeral. */
  ports: Record<string, number>;
  /** Extra arguments for each worker (e.g. --concurrency). */
  workerArgs: string[];
  /** Where launcher messages go (people read them). */
  print: (line: string) => void;
  /** How long to wait for every service to register before saying which are missing. */
  readyTimeoutMs: number;
}

interface Child {
  service: PlatformService;
  command: Command;
  restarts: number;
  startedAt: number;
}

const MAX_RESTART_DELAY_MS = 30_000;
/** A child that ran this long without crashing starts its backoff from the beginning again. */
const STABLE_AFTER_MS = 60_000;

/**
 * Starts the platform's services as separate processes (concurrently spawns them and prefixes
 * their lines), restarts a crashed one with capped exponential backoff, prints where everything
 * is once all have registered, and stops them all gracefully on SIGINT/SIGTERM.
 */
export class Launcher {
  private readonly children: Child[] = [];
  private stopping = false;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  /** Every registry replica's URL, comma-separated, as REGISTRY_URL takes them. */
  readonly registryUrl: string;
  private readonly registryReplicas: number;

  constructor(private readonly options: LaunchOptions) {
    for (const id of options.services) platformService(id);
    const registryPort = options.ports.registry ?? platformService('registry').defaultPort;
    this.registryReplicas = options.registryReplicas ?? 1;
    this.registryUrl = Array.from({ length: this.registryReplicas }, (_, i) => `http://${options.host}:${registryPort + i}`).join(',');
  }

  private count(service: PlatformService): number {
    if (service.id === 'worker') return this.options.workers;
    return service.id === 'registry' ? this.registryReplicas : 1;
  }

  private commandsFor(service: PlatformService, count: number) {
    const port = this.options.ports[service.id] ?? service.defaultPort;
    const args = service.id === 'worker' ? ` ${this.options.workerArgs.join(' ')}` : '';
    // Replicas take consecutive ports (the services are told them all) and name themselves after their place.
    const replicas = service.id === 'registry' && count > 1;
    return Array.from({ length: count }, (_, i) => ({
      name: count > 1 ? `${service.id}-${i + 1}` : service.id,
      // exec: the shell gives way to node, so signals reach the service itself.
      command: `exec "${process.execPath}" ${[...(service.nodeOptions ?? []), ''].join(' ')}--import tsx ${service.entry}${args}`,
      env: {
        PORT: String(replicas ? port + i : count > 1 ? 0 : port),
        HOST: this.options.host,
        REGISTRY_URL: this.registryUrl,
        DATA_DIR: path.join(this.options.dataDir, count > 1 ? `${service.id}-${i + 1}` : service.id),
        ...(replicas ? { REGISTRY_STORE: 'etcd', REGISTRY_REPLICA_ID: `registry-${i + 1}` } : {}),
      },
    }));
  }

  /** Starts everything; resolves when every child has exited after stop(). */
  async run(): Promise<void> {
    const wanted = PLATFORM_SERVICES.filter((s) => this.options.services.includes(s.id));
    const inputs = wanted.flatMap((service) => this.commandsFor(service, this.count(service)));
    const width = Math.max(...inputs.map((i) => i.name.length));
    // createConcurrently without its signal handler: this launcher decides the order of shutdown.
    const logger = new Logger({ prefixFormat: 'name' });
    const { commands } = createConcurrently(
      inputs.map((input) => ({ ...input, name: input.name.padEnd(width) })),
      {
        logger,
        outputStream: process.stdout,
        cwd: process.cwd(),
        controllers: [new LogError({ logger }), new LogOutput({ logger }), new LogExit({ logger })],
        // Each child gets its own process group: a Ctrl-C reaches only the launcher, which then
        // stops the services first and the log service and the registry last.
        spawn: (command, options) => spawn('/bin/sh', ['-c', command], { ...options, detached: true }),
        kill: (pid, signal) => {
          try {
            process.kill(pid, signal as NodeJS.Signals);
          } catch {
            // already gone
          }
        },
      },
    );
    let index = 0;
    for (const service of wanted) {
      for (let i = 0; i < this.count(service); i++) {
        const child: Child = { service, command: commands[index++], restarts: 0, startedAt: Date.now() };
        this.children.push(child);
        child.command.close.subscribe((event) => this.onExit(child, event.exitCode));
      }
    }
    // Children live in their own process groups: never leave one behind if this process dies.
    process.once('exit', () => {
      for (const child of this.children) if (child.command.pid && child.command.state === 'started') child.command.kill('SIGKILL');
    });
    void this.announceWhenReady(wanted);
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (this.stopping && this.children.every((c) => c.command.state !== 'started')) {
          clearInterval(check);
          resolve();
        }
      }, 100);
    });
  }

  private onExit(child: Child, exitCode: string | number): void {
    if (this.stopping) return;
    if (Date.now() - child.startedAt > STABLE_AFTER_MS) child.restarts = 0;
    const delay = Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** child.restarts);
    child.restarts++;
    this.options.print(
      `[platform] ${child.command.name.trim()} exited (${exitCode}); restarting in ${(delay / 1000).toFixed(1)} s (restart #${child.restarts})`,
    );
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (this.stopping) return;
      child.startedAt = Date.now();
      child.command.start();
      this.options.print(`[platform] ${child.command.name.trim()} restarted`);
    }, delay);
    this.restartTimers.add(timer);
  }

  /** Stops every child with the signal (they deregister, drain and flush), in order, and waits for them. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.options.print(`[platform] ${signal}: stopping ${this.children.length} processes`);
    // Services first, then the log service (it receives their last lines), then the registry.
    const stages = [
      this.children.filter((c) => c.service.id !== 'registry' && c.service.id !== 'logservice'),
      this.children.filter((c) => c.service.id === 'logservice'),
      this.children.filter((c) => c.service.id === 'registry'),
    ];
    const running = (c: Child) => c.command.state === 'started';
    let stage = -1;
    const advance = setInterval(() => {
      if (stage >= 0 && stages[stage].some(running)) return;
      stage++;
      if (stage >= stages.length) return clearInterval(advance);
      for (const child of stages[stage]) if (running(child)) child.command.kill(signal);
    }, 50);
    // Whatever hasn't gone in 30 s is killed.
    setTimeout(() => {
      for (const child of this.children) if (running(child)) child.command.kill('SIGKILL');
    }, 30_000).unref();
  }

  private async announceWhenReady(wanted: PlatformService[]): Promise<void> {
    const registry = new RegistryClient({ registryUrl: this.registryUrl, timeoutMs: 2000 });
    const expected = new Map<string, number>();
    for (const s of wanted) if (s.registersAs) expected.set(s.registersAs, s.id === 'worker' ? this.options.workers : 1);
    const deadline = Date.now() + this.options.readyTimeoutMs;
    let warned = false;
    while (!this.stopping) {
      let instances: InstanceView[] | undefined;
      try {
        instances = await registry.list();
      } catch {
        instances = undefined;
      }
      if (instances) {
        const missing = [...expected].filter(([name, count]) => instances!.filter((i) => i.serviceName === name && i.state === 'up').length < count);
        if (missing.length === 0) {
          this.options.print(renderTable(wanted, instances, this.registryUrl));
          return;
        }
        if (!warned && Date.now() > deadline) {
          warned = true;
          this.options.print(`[platform] still waiting for: ${missing.map(([name]) => name).join(', ')}`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** The table of what runs where, printed once everything has registered. */
export function renderTable(wanted: PlatformService[], instances: InstanceView[], registryUrl: string): string {
  const rows: string[][] = [];
  for (const service of wanted) {
    if (!service.registersAs) {
      const urls = registryUrl.split(',');
      rows.push([service.id, '-', String(urls.length), urls.join(' '), `${urls[0]}/  (${service.page})`]);
      continue;
    }
    const up = instances.filter((i) => i.serviceName === service.registersAs && i.state === 'up');
    const url = up.map((i) => i.serviceURL).join(' ');
    rows.push([service.id, service.registersAs, String(up.length), url, service.page && up[0] ? `${up[0].serviceURL}/  (${service.page})` : '']);
  }
  const listing = table(['service', 'registered as', 'instances', 'URL', 'page'], rows);
  return ['', 'Switchboard is running:', '', listing, '', 'Press Ctrl-C to stop everything.', ''].join('\n');
}
