import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegistryClient } from '../registry/client.ts';
import type { InstanceView } from '../registry/protocol.ts';
import { RegistryFollower, type FollowerSink } from '../registry/follower.ts';
import { PLATFORM_SERVICES, platformService, startsAfter, type PlatformService } from './services.ts';
import { ServiceProcess, type ProcessSpec } from './serviceProcess.ts';
import { PrefixedOutput } from './output.ts';
import { statusFile, writeStatus, type PlatformStatus } from '../shared/platformStatus.ts';
import { table } from '../shared/cli.ts';

export interface LaunchOptions {
  /** Service ids to run (see PLATFORM_SERVICES). */
  services: string[];
  workers: number;
  /** Registry replicas (REGISTRY_STORE=etcd, ETCD_ENDPOINTS from the environment) on consecutive ports; 1: one registry as configured. */
  registryReplicas?: number;
  /** Image storage nodes (BLOB_STORE=s3 when more than 1) and masters (TASK_STORE=postgres when more than 1), each on an ephemeral port when more than 1. */
  storageNodes?: number;
  masters?: number;
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
  /** Colour the prefixes and WARN/ERROR (a terminal, without NO_COLOR or --no-color). */
  color?: boolean;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Run from dist/ (npm start), the services run compiled too; run through tsx (the tests), they run through tsx. */
const COMPILED = import.meta.url.endsWith('.js');
const ROOT = path.resolve(HERE, COMPILED ? '../..' : '..');
/** How often a registry process is asked whether it answers yet, while none does. */
const REGISTRY_POLL_MS = 25;
/**
 * How often the registry processes are asked whether they still answer. Registrations need no polling: they come
 * on the registry's stream, and each wakes the launcher at once, as does a process that starts or exits. Asking for
 * the list every 25 ms instead cost the launcher and the registry 0.4-0.5 s of CPU during a start (docs/benchmarks.md).
 */
const CHECK_MS = 1000;

/**
 * Starts the platform's services as separate processes, each once the services it needs are up (the registry
 * first, then the log and events services, then the rest), prefixes their lines, restarts a crashed one, prints
 * where everything is once all have registered, keeps <DATA_DIR>/platform.json current for `platform ps`, and
 * stops them all gracefully, in order, on SIGINT/SIGTERM.
 */
export class Launcher {
  private readonly processes: ServiceProcess[] = [];
  private stopping = false;
  /** Every registry replica's URL, comma-separated, as REGISTRY_URL takes them. */
  readonly registryUrl: string;
  private readonly registryUrls: string[];
  private readonly wanted: PlatformService[];
  private readonly output: PrefixedOutput;
  private readonly startedAt = Date.now();
  private readonly statusPath: string;
  private lastStatus = '';
  private stopped?: Promise<void>;
  /** The URLs of each registered name's instances started here, as the registry lists them. */
  private readonly registered = new Map<string, string[]>();
  /** The registry's instances by id, kept current by the follower. */
  private readonly instances = new Map<string, InstanceView>();
  private readonly follower: RegistryFollower;
  /** Set by a change (a registration, a process started or gone); the loop's next turn comes at once. */
  private woken = false;
  private wake?: () => void;

  constructor(private readonly options: LaunchOptions) {
    for (const id of options.services) platformService(id);
    const registryPort = options.ports.registry ?? platformService('registry').defaultPort;
    const replicas = options.registryReplicas ?? 1;
    this.registryUrls = Array.from({ length: replicas }, (_, i) => `http://${options.host}:${registryPort + i}`);
    this.registryUrl = this.registryUrls.join(',');
    this.wanted = PLATFORM_SERVICES.filter((s) => options.services.includes(s.id));
    this.statusPath = statusFile(options.dataDir);
    const specs = this.wanted.flatMap((service) => this.specsFor(service));
    this.output = new PrefixedOutput(specs.map((s) => s.name), options.color ?? false, options.print);
    const events = {
      line: (p: ServiceProcess, line: string) => this.output.line(p.name, line),
      notice: (text: string) => this.output.platform(text),
      changed: () => {
        this.writeStatus();
        this.wakeUp();
      },
    };
    for (const spec of specs) this.processes.push(new ServiceProcess(spec, events));
    const changed = (update: () => void) => {
      update();
      this.wakeUp();
    };
    const sink: FollowerSink = {
      reconcile: (instances) => changed(() => {
        this.instances.clear();
        for (const instance of instances) this.instances.set(instance.instanceId, instance);
      }),
      sync: (instance) => changed(() => this.instances.set(instance.instanceId, instance)),
      remove: (instance) => changed(() => this.instances.delete(instance.instanceId)),
    };
    const registry = new RegistryClient({ registryUrl: this.registryUrl, timeoutMs: 2000 });
    this.follower = new RegistryFollower(registry, sink, { warn: (text) => this.output.platform(text), error: (text) => this.output.platform(text) });
  }

  private specsFor(service: PlatformService): ProcessSpec[] {
    const counts: Record<string, number> = { worker: this.options.workers, registry: this.registryUrls.length, storage: this.options.storageNodes ?? 1, master: this.options.masters ?? 1 };
    const count = counts[service.id] ?? 1;
    const port = this.options.ports[service.id] ?? service.defaultPort;
    // Replicas take consecutive ports (the services are told them all) and name themselves after their place.
    const replicas = service.id === 'registry' && count > 1;
    const entry = path.join(ROOT, COMPILED ? path.join('dist', service.entry.replace(/\.ts$/, '.js')) : service.entry);
    const name = service.registersAs ?? service.id;
    return Array.from({ length: count }, (_, i) => ({
      name: count > 1 ? `${name}-${i + 1}` : name,
      service,
      healthUrl: service.id === 'registry' ? `${this.registryUrls[i]}/health` : undefined,
      command: process.execPath,
      args: [...(service.nodeOptions ?? []), ...(COMPILED ? [] : ['--import', 'tsx']), entry, ...(service.id === 'worker' ? this.options.workerArgs : [])],
      env: {
        PORT: String(replicas ? port + i : count > 1 ? 0 : port),
        HOST: this.options.host,
        REGISTRY_URL: this.registryUrl,
        DATA_DIR: path.join(this.options.dataDir, count > 1 ? `${service.id}-${i + 1}` : service.id),
        PLATFORM_STATUS_FILE: this.statusPath,
        ...(replicas ? { REGISTRY_STORE: 'etcd', REGISTRY_REPLICA_ID: `registry-${i + 1}` } : {}),
      },
    }));
  }

  /** Starts everything; resolves when every process has exited after stop(). */
  async run(): Promise<void> {
    // The processes live in their own process groups: never leave one behind if this process dies.
    process.once('exit', () => {
      for (const p of this.processes) p.kill();
    });
    this.writeStatus();
    const deadline = Date.now() + this.options.readyTimeoutMs;
    let announced = false;
    let warned = false;
    while (!this.stopping) {
      this.woken = false;
      this.startWhatCan();
      await this.checkReadiness();
      const pending = this.processes.filter((p) => p.state !== 'up');
      if (!announced && pending.length === 0) {
        announced = true;
        this.options.print(this.renderTable());
      } else if (!announced && !warned && Date.now() > deadline) {
        warned = true;
        this.output.platform(`still waiting for: ${pending.map((p) => p.name).join(', ')}`);
      }
      const awaitingRegistry = this.processes.some((p) => p.spec.healthUrl && p.running && p.state !== 'up');
      await this.nextTurn(awaitingRegistry ? REGISTRY_POLL_MS : CHECK_MS);
    }
    await this.stopped;
    this.writeStatus();
    this.output.platform('everything has stopped');
  }

  /** Starts each waiting process whose services-to-start-after are all up. */
  private startWhatCan(): void {
    const ids = this.wanted.map((s) => s.id);
    for (const p of this.processes) {
      if (p.state !== 'waiting') continue;
      const after = startsAfter(p.spec.service, ids);
      if (!after.every((id) => this.processes.filter((o) => o.spec.service.id === id).every((o) => o.state === 'up'))) continue;
      p.start();
      if (p.pid) this.output.platform(`started ${p.name} (pid ${p.pid})`);
    }
  }

  /** Resolves after `ms`, or as soon as something changes. */
  private nextTurn(ms: number): Promise<void> {
    if (this.woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        this.wake = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wakeUp(): void {
    this.woken = true;
    this.wake?.();
  }

  /**
   * The registry is up when it answers; every other process when it is registered, and up, with its pid, as the
   * registry's stream shows it (followed from the moment a registry answers).
   */
  private async checkReadiness(): Promise<void> {
    const registries = this.processes.filter((p) => p.spec.healthUrl && p.running);
    await Promise.all(registries.map(async (p) => p.markUp(await answers(p.spec.healthUrl!))));
    if (registries.length > 0 && !registries.some((p) => p.state === 'up')) return;
    this.follower.start();
    const others = this.processes.filter((p) => p.spec.service.registersAs && p.running);
    const instances = [...this.instances.values()];
    this.registered.clear();
    for (const p of others) {
      const mine = instances.filter((i) => i.serviceName === p.spec.service.registersAs && i.state === 'up' && i.metadata?.pid === String(p.pid));
      p.markUp(mine.length > 0);
      const urls = this.registered.get(p.spec.service.registersAs!) ?? [];
      this.registered.set(p.spec.service.registersAs!, [...urls, ...mine.map((i) => i.serviceURL)]);
    }
  }

  /** Stops every process with the signal (they deregister, drain and flush), in order; a second call kills them. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.stopping) {
      // A second Ctrl-C: the person won't wait for the graceful stop.
      this.output.platform(`${signal} again: killing what is left`);
      return this.processes.forEach((p) => p.kill());
    }
    this.stopping = true;
    this.wakeUp();
    this.output.platform(`${signal}: stopping ${this.processes.filter((p) => p.running).length} processes`);
    // Services first, then the events service (it ships its lines to the log service), then the log service
    // (it receives everyone's last lines), then the registry.
    const is = (id: string) => (p: ServiceProcess) => p.spec.service.id === id;
    const stages = [
      this.processes.filter((p) => !['events', 'logservice', 'registry'].includes(p.spec.service.id)),
      this.processes.filter(is('events')),
      this.processes.filter(is('logservice')),
      this.processes.filter(is('registry')),
    ];
    // Whatever hasn't gone in 30 s is killed.
    const killer = setTimeout(() => this.processes.forEach((p) => p.kill()), 30_000);
    this.stopped = (async () => {
      // Not following the registry any more: it stops last, and its stream's end is no news.
      await this.follower.stop();
      for (const stage of stages) await Promise.all(stage.map((p) => p.stop(signal)));
      clearTimeout(killer);
    })();
  }

  /** The status for `platform ps`, written when it changes. */
  private writeStatus(): void {
    const status: PlatformStatus = {
      launcherPid: process.pid,
      startedAt: this.startedAt,
      registryUrl: this.registryUrl,
      processes: this.processes.map((p) => ({
        name: p.name,
        service: p.spec.service.id,
        pid: p.pid ?? null,
        state: p.state,
        restarts: p.restarts,
        startedAt: p.startedAt ?? null,
        lastExitCode: p.lastExitCode ?? null,
      })),
    };
    const text = JSON.stringify(status);
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    try {
      writeStatus(this.statusPath, status);
    } catch (err) {
      this.output.platform(`cannot write ${this.statusPath}: ${(err as Error).message}`);
    }
  }

  /** The table of what runs where, printed once everything is up. */
  private renderTable(): string {
    const rows = this.wanted.map((service) => {
      const mine = this.processes.filter((p) => p.spec.service === service);
      const urls = service.registersAs ? this.registered.get(service.registersAs) ?? [] : this.registryUrls;
      const pids = mine.map((p) => p.pid).join(' ');
      return [service.id, service.registersAs ?? '-', pids, String(mine.length), urls.join(' '), service.page && urls[0] ? `${urls[0]}/  (${service.page})` : ''];
    });
    const listing = table(['service', 'registered as', 'pid', 'instances', 'URL', 'page'], rows);
    return ['', 'Switchboard is running:', '', listing, '', 'Press Ctrl-C to stop everything.', ''].join('\n');
  }

}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
