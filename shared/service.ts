import type http from 'node:http';
import type { Express, Router } from 'express';
import type { AxiosInstance } from 'axios';
import { z } from 'zod';
import { createApp, finishApp, listen, closeServer, boundPort, type ServerTimeouts } from './http.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, prom } from './metrics.ts';
import { ProviderTable, type ProviderListener } from './providers.ts';
import { createServiceClient, type ServiceClientOptions } from './serviceClient.ts';
import { EqualJitterBackoff } from './backoff.ts';
import { advertisedUrl, serviceConfig, type ServiceConfig } from './config.ts';
import { parseBody, httpUrl } from './validate.ts';
import { HttpError } from './errors.ts';
import { bearerMatches } from './auth.ts';
import { RegistryClient, RegistryError } from '../registry/client.ts';
import type { RegistrationInput, RegisterResponse } from '../registry/protocol.ts';
import { attachLogShipper, type LogShipper } from '../logservice/client.ts';

export interface StartServiceOptions {
  /** The name it registers as. */
  name: string;
  requiredServices?: string[];
  /** The service's own routes, as an express app or router. */
  app?: Express | Router;
  /** Or a function that builds them, given the service (for routes that call svc.client()). */
  routes?: (svc: Service) => Express | Router;
  /** Port, host, registry and data directory; defaults come from the environment (serviceConfig). */
  config?: Partial<ServiceConfig>;
  defaultPort?: number;
  /** Register with a lease (ttlSeconds, renewed) instead of heartbeat checks: for services with no API. */
  leaseTtlSeconds?: number;
  metadata?: Record<string, string>;
  /** Limit for JSON and text bodies (default 64kb). Routes that take other bodies enforce their own. */
  bodyLimit?: string | number;
  timeouts?: ServerTimeouts;
  logger?: Logger;
  clientOptions?: ServiceClientOptions;
  /** Called during shutdown after deregistration and before in-flight requests are awaited. */
  onStop?: () => Promise<void> | void;
}

// A provider URL that is not an http(s) URL would be called by svc.client(): refuse it with the patch.
const patchEntry = z.object({ name: z.string().min(1).max(256), url: httpUrl });
const patchSchema = z.object({
  added: z.array(z.unknown()).nullish(),
  removed: z.array(z.unknown()).nullish(),
  seq: z.number().int().nonnegative().optional(),
});
function parseEntries(list: unknown[] | null | undefined): { name: string; url: string }[] {
  return (list ?? []).map((raw) => parseBody(patchEntry, raw, 'invalid_patch'));
}

/** A running, registered service: its provider table, clients, logger and metrics. */
export class Service {
  readonly name: string;
  readonly requiredServices: string[];
  readonly providers = new ProviderTable();
  readonly metrics: prom.Registry;
  readonly logger: Logger;
  readonly registry: RegistryClient;
  readonly config: ServiceConfig;
  url = '';
  instanceId?: string;
  /** Resolves on the first successful registration. */
  readonly registered: Promise<void>;

  private server?: http.Server;
  private readonly clients = new Map<string, AxiosInstance>();
  private readonly abort = new AbortController();
  private lastSeq?: number;
  private patchesApplied = 0;
  private resyncing?: Promise<void>;
  private resyncAgain = false;
  private lastHeartbeatAt = Date.now();
  private heartbeatIntervalMs = 1000;
  private registering?: Promise<void>;
  private watchdog?: NodeJS.Timeout;
  private resolveRegistered!: () => void;
  private stopping?: Promise<void>;
  private readonly resyncs: prom.Counter;
  /** Ships the logger's lines to the log service, when this service requires "log". */
  readonly logShipper?: LogShipper;

  constructor(private readonly options: StartServiceOptions) {
    this.name = options.name;
    this.requiredServices = [...new Set(options.requiredServices ?? [])];
    this.config = { ...serviceConfig(options.name, options.defaultPort ?? 0), ...stripUndefined(options.config ?? {}) };
    this.logger = options.logger ?? createLogger(options.name);
    this.metrics = createMetrics(options.name);
    this.registry = new RegistryClient({ registryUrl: this.config.registryUrl, token: this.config.registryToken, timeoutMs: 3000 });
    this.registered = new Promise((resolve) => (this.resolveRegistered = resolve));
    this.resyncs = new prom.Counter({ name: 'service_resyncs_total', help: 'Full provider re-syncs from the registry', registers: [this.metrics] });
    for (const name of this.requiredServices) this.providers.replace(name, []);
    if (this.requiredServices.includes('log')) {
      this.logShipper = attachLogShipper({ logger: this.logger, providers: this.providers, serviceName: this.name, metrics: this.metrics });
    }
  }

  /** Picks a live instance of a required service (round-robin), or undefined when none is up. */
  provider(name: string): string | undefined {
    return this.providers.pick(name);
  }

  /** An axios instance that calls a live instance of the named service, with failover. */
  client(name: string): AxiosInstance {
    let client = this.clients.get(name);
    if (!client) this.clients.set(name, (client = createServiceClient(name, this.providers, this.options.clientOptions)));
    return client;
  }

  onChange(name: string, listener: ProviderListener): () => void {
    return this.providers.onChange(name, listener);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  async start(): Promise<this> {
    const app = createApp({ metrics: this.metrics, jsonLimit: this.options.bodyLimit });
    app.get('/heartbeat', (_req, res) => {
      this.lastHeartbeatAt = Date.now();
      res.json({ status: 'ok', name: this.name });
    });
    app.get('/health', (_req, res) => {
      res.json({ status: this.stopping ? 'stopping' : 'ok', name: this.name, instanceId: this.instanceId, providers: this.providers.snapshot() });
    });
    app.post('/services', (req, res) => {
      this.assertFromRegistry(req.get('authorization'));
      const patch = parseBody(patchSchema, req.body, 'invalid_patch');
      // An empty body (which the JSON parser reads as {}) is not a patch. Go sends null lists, which are.
      if (patch.added === undefined && patch.removed === undefined) throw new HttpError(400, 'invalid_patch', 'body: a patch needs "added" or "removed"');
      const added = parseEntries(patch.added);
      const removed = parseEntries(patch.removed);
      res.json({ ok: true });
      this.applyPatch(added, removed, patch.seq);
    });
    if (this.options.app) app.use(this.options.app);
    if (this.options.routes) app.use(this.options.routes(this));
    finishApp(app, this.logger);

    this.server = await listen(app, this.config.host, this.config.port, this.options.timeouts);
    this.url = advertisedUrl(this.config.host, boundPort(this.server), this.config.advertiseUrl);
    this.logger.info(`${this.name} listening on ${this.url}`);
    void this.registerLoop();
    this.watchdog = setInterval(() => this.checkRegistration(), this.options.leaseTtlSeconds ? (this.options.leaseTtlSeconds * 1000) / 3 : 500);
    this.watchdog.unref();
    return this;
  }

  private registration(): RegistrationInput {
    const lease = this.options.leaseTtlSeconds;
    return {
      serviceName: this.name,
      serviceURL: this.url,
      requiredServices: this.requiredServices,
      serviceUpdateURL: `${this.url}/services`,
      heartbeatURL: lease ? undefined : `${this.url}/heartbeat`,
      ttlSeconds: lease,
      instanceId: this.instanceId,
      metadata: { pid: String(process.pid), ...this.options.metadata },
    };
  }

  /** Registers, retrying with backoff and jitter while the registry is unreachable. One loop at a time. */
  private registerLoop(): Promise<void> {
    this.registering ??= (async () => {
      const backoff = new EqualJitterBackoff({ initialMs: 200, maxMs: 5000 });
      let attempts = 0;
      while (!this.abort.signal.aborted) {
        try {
          const answer = await this.registry.register(this.registration());
          this.onRegistered(answer);
          return;
        } catch (err) {
          attempts++;
          const reason = err instanceof RegistryError ? err.message : (err as Error).message;
          if (err instanceof RegistryError && err.status >= 400 && err.status < 500) {
            this.logger.error(`the registry refused our registration: ${reason}`);
          } else if (attempts === 1 || attempts % 10 === 0) {
            this.logger.warn(`cannot register with ${this.config.registryUrl} (${reason}); retrying with backoff`);
          }
        }
        if (!(await backoff.wait(this.abort.signal))) return;
      }
    })().finally(() => (this.registering = undefined));
    return this.registering;
  }

  private onRegistered(answer: RegisterResponse): void {
    const first = this.instanceId === undefined;
    this.instanceId = answer.instanceId;
    this.heartbeatIntervalMs = answer.heartbeatIntervalMs || 1000;
    this.lastHeartbeatAt = Date.now();
    // A patch newer than this answer already arrived (it raced the answer): the answer's list may be older than it.
    const patchesAhead = this.lastSeq !== undefined && this.lastSeq > answer.seq;
    for (const [name, urls] of Object.entries(answer.providers)) this.providers.replace(name, urls);
    if (!patchesAhead) this.lastSeq = answer.seq;
    this.logger.info(`${first ? 'registered' : 'registered again'} as ${this.name} (${answer.instanceId}) with ${this.config.registryUrl}`);
    this.resolveRegistered();
    if (patchesAhead) void this.resync();
  }

  /** With REGISTRY_TOKEN set, only the registry (which sends it) may change our provider table. */
  private assertFromRegistry(authorization: string | undefined): void {
    const token = this.config.registryToken;
    if (!token) return;
    if (bearerMatches(authorization, token)) return;
    throw new HttpError(401, 'unauthorized', 'patches need Authorization: Bearer <REGISTRY_TOKEN>', { 'WWW-Authenticate': 'Bearer' });
  }

  private applyPatch(added: { name: string; url: string }[], removed: { name: string; url: string }[], seq?: number): void {
    this.patchesApplied++;
    for (const { name, url } of removed) this.providers.remove(name, url);
    for (const { name, url } of added) if (this.requiredServices.includes(name)) this.providers.add(name, url);
    if (seq === undefined) return;
    const expected = this.lastSeq === undefined ? undefined : this.lastSeq + 1;
    // Anything but the next number (a lost patch, or a registry that restarted and counts from 1) means re-sync.
    this.lastSeq = seq;
    if (expected !== undefined && seq !== expected) {
      this.logger.info(`patch ${seq} where ${expected} was expected: re-syncing from the registry`);
      void this.resync();
    }
  }

  /**
   * Rebuilds the provider table from GET /services. Calls made while one runs share it; if patches
   * arrived while the listing was on its way, the listing may be older than they are: fetch again.
   */
  resync(): Promise<void> {
    if (this.requiredServices.length === 0) return Promise.resolve();
    if (this.resyncing) {
      this.resyncAgain = true;
      return this.resyncing;
    }
    this.resyncing = (async () => {
      for (let round = 0; round < 3; round++) {
        this.resyncAgain = false;
        const patchesBefore = this.patchesApplied;
        try {
          const map = await this.registry.providers(this.requiredServices);
          this.resyncs.inc();
          for (const [name, urls] of Object.entries(map)) this.providers.replace(name, urls);
        } catch (err) {
          this.logger.warn(`re-sync failed: ${(err as Error).message}`);
          return;
        }
        if (!this.resyncAgain && this.patchesApplied === patchesBefore) return;
      }
    })().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  /** Notices when the registry forgot us (no heartbeat for a while, or a lease it doesn't know) and registers again. */
  private checkRegistration(): void {
    if (this.abort.signal.aborted || this.registering || !this.instanceId) return;
    if (this.options.leaseTtlSeconds) {
      const patchesBefore = this.patchesApplied;
      void this.registry.renewLease(this.instanceId).then(
        (answer) => {
          // A patch that arrived meanwhile is newer than this answer's list.
          if (this.patchesApplied !== patchesBefore) return;
          for (const [name, urls] of Object.entries(answer.providers)) this.providers.replace(name, urls);
        },
        (err: RegistryError) => {
          if (err.status === 404) {
            this.logger.warn('the registry does not know our lease; registering again');
            void this.registerLoop();
          } else this.logger.warn(`lease renewal failed: ${err.message}`);
        },
      );
      return;
    }
    const silence = Date.now() - this.lastHeartbeatAt;
    if (silence > 4 * this.heartbeatIntervalMs + 1000) {
      this.logger.warn(`no heartbeat check from the registry for ${silence} ms; registering again`);
      this.lastHeartbeatAt = Date.now();
      void this.registerLoop();
    }
  }

  /** Stops taking requests, deregisters, lets in-flight requests finish, flushes logs. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      clearInterval(this.watchdog);
      const closing = this.server ? closeServer(this.server, 10_000) : Promise.resolve();
      if (this.instanceId) {
        try {
          await this.registry.deregister(this.instanceId);
          this.logger.info('deregistered');
        } catch (err) {
          this.logger.warn(`could not deregister (${(err as Error).message}); the registry will notice we are gone`);
        }
      }
      await this.options.onStop?.();
      await closing;
      await flushLogger(this.logger);
      // Ending the logger starts the shipper's final flush; wait until it is done.
      await this.logShipper?.close();
    })();
    return this.stopping;
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Ends the logger and waits for every transport to finish writing. */
export async function flushLogger(logger: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5000);
    logger.on('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    logger.end();
  });
}

/** Makes an express app a registered, discoverable service. */
export async function startService(options: StartServiceOptions): Promise<Service> {
  return new Service(options).start();
}
