import type http from 'node:http';
import type { Express, Router } from 'express';
import type { AxiosInstance } from 'axios';
import { createApp, finishApp, listen, closeServer, boundPort, type ServerTimeouts } from './http.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, prom } from './metrics.ts';
import { ProviderTable, type ProviderListener } from './providers.ts';
import { createServiceClient, type ServiceClientOptions } from './serviceClient.ts';
import { advertisedUrl, serviceConfig, type ServiceConfig } from './config.ts';
import { parseBody } from './validate.ts';
import { HttpError } from './errors.ts';
import { bearerMatches } from './auth.ts';
import { RegistrySession } from './registrySession.ts';
import { versionInfo } from './version.ts';
import { RegistryClient } from '../registry/client.ts';
import { patchSchema } from '../registry/protocol.ts';

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
  /** Called with the new service before it listens, for what its starter adds (logservice/client.ts withLogShipping). */
  setup?: (svc: Service) => void;
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

  private server?: http.Server;
  private readonly clients = new Map<string, AxiosInstance>();
  private readonly session: RegistrySession;
  private readonly shutdownSteps: (() => Promise<void> | void)[] = [];
  private stopping?: Promise<void>;

  constructor(private readonly options: StartServiceOptions) {
    this.name = options.name;
    this.requiredServices = [...new Set(options.requiredServices ?? [])];
    this.config = { ...serviceConfig(options.name, options.defaultPort ?? 0), ...stripUndefined(options.config ?? {}) };
    this.logger = options.logger ?? createLogger(options.name);
    this.metrics = createMetrics(options.name);
    this.registry = new RegistryClient({ registryUrl: this.config.registryUrl, token: this.config.registryToken, timeoutMs: 3000 });
    const resyncs = new prom.Counter({ name: 'service_resyncs_total', help: 'Full provider re-syncs from the registry', registers: [this.metrics] });
    for (const name of this.requiredServices) this.providers.replace(name, []);
    this.session = new RegistrySession({
      registry: this.registry,
      registryUrl: this.config.registryUrl,
      providers: this.providers,
      requiredServices: this.requiredServices,
      logger: this.logger,
      leaseTtlSeconds: options.leaseTtlSeconds,
      onResync: () => resyncs.inc(),
    });
    options.setup?.(this);
  }

  get instanceId(): string | undefined {
    return this.session.instanceId;
  }

  /** Resolves on the first successful registration. */
  get registered(): Promise<void> {
    return this.session.registered;
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
    return this.session.signal;
  }

  /** Rebuilds the provider table from the registry's listing (see RegistrySession.resync). */
  resync(): Promise<void> {
    return this.session.resync();
  }

  /** Adds a step to the very end of stop(), after the logger has ended: a log transport's final flush. */
  addShutdownStep(step: () => Promise<void> | void): void {
    this.shutdownSteps.push(step);
  }

  async start(): Promise<this> {
    const app = createApp({ metrics: this.metrics, jsonLimit: this.options.bodyLimit });
    app.get('/heartbeat', (_req, res) => {
      this.session.heartbeat();
      res.json({ status: 'ok', name: this.name });
    });
    app.get('/health', (_req, res) => {
      res.json({ status: this.stopping ? 'stopping' : 'ok', name: this.name, ...versionInfo(), instanceId: this.instanceId, providers: this.providers.snapshot() });
    });
    app.post('/services', (req, res) => {
      this.assertFromRegistry(req.get('authorization'));
      const patch = parseBody(patchSchema, req.body, 'invalid_patch');
      res.json({ ok: true });
      this.session.applyPatch(patch);
    });
    if (this.options.app) app.use(this.options.app);
    if (this.options.routes) app.use(this.options.routes(this));
    finishApp(app, this.logger);

    this.server = await listen(app, this.config.host, this.config.port, this.options.timeouts);
    this.url = advertisedUrl(this.config.host, boundPort(this.server), this.config.advertiseUrl);
    this.logger.info(`${this.name} listening on ${this.url}`);
    const lease = this.options.leaseTtlSeconds;
    this.session.start({
      serviceName: this.name,
      serviceURL: this.url,
      requiredServices: this.requiredServices,
      serviceUpdateURL: `${this.url}/services`,
      heartbeatURL: lease ? undefined : `${this.url}/heartbeat`,
      ttlSeconds: lease,
      metadata: { pid: String(process.pid), ...this.options.metadata },
    });
    return this;
  }

  /** With REGISTRY_TOKEN set, only the registry (which sends it) may change our provider table. */
  private assertFromRegistry(authorization: string | undefined): void {
    const token = this.config.registryToken;
    if (!token) return;
    if (bearerMatches(authorization, token)) return;
    throw new HttpError(401, 'unauthorized', 'patches need Authorization: Bearer <REGISTRY_TOKEN>', { 'WWW-Authenticate': 'Bearer' });
  }

  /** Deregisters, stops taking requests, lets in-flight requests finish, flushes logs. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // Deregistered before the port closes: a check meanwhile would be refused, and the registry would warn us down.
      await this.session.close();
      const closing = this.server ? closeServer(this.server, 10_000) : Promise.resolve();
      await this.options.onStop?.();
      await closing;
      await flushLogger(this.logger);
      for (const step of this.shutdownSteps) await step();
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
