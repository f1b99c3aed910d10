import http from 'node:http';
import express, { type Express, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Logger } from 'winston';
import { Registry } from './registry.ts';
import { toView } from './instanceView.ts';
import { HealthChecker } from './healthChecker.ts';
import { ExpiryWatcher } from './expiryWatcher.ts';
import { Notifier } from './notifier.ts';
import { Announcer } from './announcer.ts';
import { Outbound } from './outbound.ts';
import { RegistrationStore } from './store.ts';
import { FileCatalogStore, type CatalogStore } from './catalogStore.ts';
import type { Replication } from './replication.ts';
import { replicaLink } from './replicaLink.ts';
import { HostCheck } from './hostCheck.ts';
import { registryMetrics } from './metrics.ts';
import type { RegistryOptions } from './config.ts';
import type { ServicesListing } from './protocol.ts';
import { createApp, finishApp, listen, closeServer, boundPort, DEFAULT_JSON_LIMIT } from '../shared/http.ts';
import { HttpError, methodNotAllowed, payloadTooLarge } from '../shared/errors.ts';
import { bearerMatches } from '../shared/auth.ts';
import { parseWith, httpUrl } from '../shared/validate.ts';
import type { prom } from '../shared/metrics.ts';
import { createLogger } from '../shared/logger.ts';
import { isLoopback } from '../shared/config.ts';
import { dashboardPage } from './dashboard.ts';
import { platformStatusRoutes } from './platformRoute.ts';
import { cspNonce } from '../shared/pageHeaders.ts';
import { readAccess } from '../shared/readAccess.ts';
import { ClientChanges } from './clientChanges.ts';
import { registerEndpoint } from './registerEndpoint.ts';
import { RegistryStream } from './stream.ts';
import { limitBody } from '../shared/bodyLimit.ts';
import { RegistryEventsPublisher } from './eventsPublisher.ts';
import { Timeline, timelineDefaults } from './timeline.ts';
import { readRoutes } from './readRoutes.ts';
import { sendJsonList } from '../shared/jsonList.ts';
import { versionInfo } from '../shared/version.ts';

export type { RegistryOptions } from './config.ts';

const MAX_BODY_BYTES = 64 * 1024;
const instanceIdParam = z.object({ instanceId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'is not a valid instance id') });
const nameQuery = z.object({ name: z.union([z.string(), z.array(z.string())]).optional() });

function namesFrom(query: unknown): string[] | undefined {
  const { name } = parseWith(nameQuery, query);
  if (name === undefined) return undefined;
  return (Array.isArray(name) ? name : [name]).flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
}

/**
 * The central registry: construction, start and stop, and the routes. A change runs one way:
 * route → Registry (every write to an instance record) → its change event, heard in this order by
 * the store, the health checker, the announcer (who is told what) and the stream.
 */
export class RegistryServer {
  readonly registry = new Registry();
  readonly logger: Logger;
  readonly app: Express;
  readonly metrics: prom.Registry;
  private server?: http.Server;
  private readonly outbound = new Outbound((hostPort) => this.checker.peerClosed(hostPort));
  private readonly store: CatalogStore;
  /** With REGISTRY_STORE=etcd: etcd, the replicas and who owns what. */
  private readonly replication?: Replication;
  private readonly checker: HealthChecker;
  private readonly expiry: ExpiryWatcher;
  private readonly notifier: Notifier;
  private readonly announcer: Announcer;
  private readonly stream: RegistryStream;
  private readonly changes: ClientChanges;
  private readonly events: RegistryEventsPublisher;
  private readonly timeline: Timeline;

  /**
   * The registry for these options. The replica mode's etcd client (etcd3 with gRPC: 32 MB of memory and
   * a quarter of a second to load) is loaded only with REGISTRY_STORE=etcd, not by every file-store registry.
   */
  static async open(options: RegistryOptions): Promise<RegistryServer> {
    return new RegistryServer(options, options.store === 'etcd' ? (await import('./replication.ts')).Replication : undefined);
  }

  /** With REGISTRY_STORE=etcd, `replicationClass` is required (open() loads it). */
  constructor(
    readonly options: RegistryOptions,
    replicationClass?: typeof Replication,
  ) {
    this.logger = options.logger ?? createLogger('registry');
    const { metrics, registrations, checkObserver, notifierObserver } = registryMetrics(this.registry);
    this.metrics = metrics;
    if (options.store === 'etcd') {
      if (!replicationClass) throw new Error('REGISTRY_STORE=etcd needs the replica mode: create the registry with RegistryServer.open()');
      this.replication = new replicationClass(options, this.registry, this.logger);
    }
    this.store = this.replication?.store ?? new FileCatalogStore(new RegistrationStore(options.dataDir, this.logger));
    // One registry alone (the file store) owns everything.
    const owns = this.replication?.owns;
    this.registry.on('change', (change) => change.remote || this.store.changed(change));
    this.stream = new RegistryStream(this.registry, undefined, this.metrics);
    const checkOptions = {
      intervalMs: options.heartbeatIntervalMs,
      timeoutMs: options.heartbeatTimeoutMs,
      heartbeatFailures: options.heartbeatFailures,
      maxConcurrent: options.heartbeatConcurrency,
      owns,
    };
    this.checker = new HealthChecker(this.registry, this.outbound, checkOptions, this.logger, {
      onCheck: (record, result) => {
        checkObserver.onCheck?.(record, result);
        this.stream.onCheck(record, result);
      },
    });
    this.expiry = new ExpiryWatcher(this.registry, { intervalMs: options.heartbeatIntervalMs, evictAfterMs: options.evictAfterMs, owns }, this.logger);
    const notifyOptions = { timeoutMs: options.notifyTimeoutMs, retries: options.notifyRetries, token: options.token };
    this.notifier = new Notifier(this.outbound, notifyOptions, this.logger, notifierObserver);
    this.announcer = new Announcer(this.registry, this.notifier, { notifyTimeoutMs: options.notifyTimeoutMs, owns });
    this.replication?.onTakeover({
      adopt: (record) => {
        this.checker.checkSoon(record.instanceId);
        this.announcer.adopt(record);
      },
      release: (id) => {
        this.checker.forget(id);
        this.notifier.forget(id);
      },
    });
    this.registry.on('change', (change) => this.stream.onChange(change));
    this.events = new RegistryEventsPublisher(this.registry, this.metrics, this.logger);
    const hostCheck = new HostCheck(options.allowForeignHosts);
    const checkSoon = (id: string) => this.checker.checkSoon(id);
    this.changes = new ClientChanges(this.registry, this.store, this.announcer, hostCheck, registrations, options.heartbeatIntervalMs, this.logger, checkSoon);
    this.timeline = new Timeline(this.registry, { ...timelineDefaults, token: options.token });
    this.app = this.buildApp();
  }

  get url(): string {
    if (!this.server) throw new Error('registry is not listening');
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${boundPort(this.server)}`;
  }

  async start(): Promise<this> {
    const restored = await this.store.load();
    for (const record of restored) {
      if (!this.registry.restore(record)) continue;
      if (!this.replication) this.checker.checkSoon(record.instanceId); // replicas check what they adopt
    }
    if (restored.length) this.logger.info(`restored ${restored.length} registration(s); checking them now`);
    await this.store.follow();
    const handler = registerEndpoint({
      limit: MAX_BODY_BYTES,
      authorize: this.authorize,
      register: (body, remoteAddress) => this.changes.register(body, remoteAddress),
      fallback: this.app,
      logger: this.logger,
    });
    this.server = await listen(handler, this.options.host, this.options.port);
    await this.replication?.join(this.url);
    this.checker.start();
    this.expiry.start();
    this.timeline.start();
    if (!this.options.token && !isLoopback(this.options.host)) {
      this.logger.warn(
        `!!! the registry listens on ${this.options.host} without REGISTRY_TOKEN: anyone who can reach it can register and deregister services. Set REGISTRY_TOKEN. !!!`,
      );
    }
    this.logger.info(`registry listening on ${this.url}`);
    return this;
  }

  async stop(): Promise<void> {
    await this.replication?.leave();
    this.checker.stop();
    this.expiry.stop();
    this.timeline.stop();
    this.stream.close();
    await this.events.close();
    if (this.server) await closeServer(this.server, 1000);
    this.notifier.close();
    this.changes.flush();
    await this.store.flush();
    this.store.close();
    this.replication?.close();
    this.outbound.destroy();
  }

  /** Checks every instance now (used by benchmarks to time one sweep). */
  sweep(): Promise<void> {
    return this.checker.sweep();
  }

  /** With a token set, every call but GET and HEAD needs `Authorization: Bearer <token>`. */
  private authorize = (req: http.IncomingMessage): HttpError | undefined => {
    const token = this.options.token;
    if (!token || req.method === 'GET' || req.method === 'HEAD') return undefined;
    if (bearerMatches(req.headers.authorization, token)) return undefined;
    return new HttpError(401, 'unauthorized', 'this registry needs Authorization: Bearer <REGISTRY_TOKEN> for changes', { 'WWW-Authenticate': 'Bearer' });
  };

  private requireToken: RequestHandler = (req, _res, next) => next(this.authorize(req));

  private buildApp(): Express {
    const app = createApp({ metrics: this.metrics, jsonLimit: DEFAULT_JSON_LIMIT });
    app.use(readAccess({ service: 'registry', registryToken: this.options.token, pages: ['/'], apis: ['/timeline', '/platform'] }));
    app.use(this.requireToken);
    // Whatever its type, no request to the registry needs more than 64 KiB.
    app.use((req, _res, next) => {
      const length = Number(req.get('content-length') ?? 0);
      if (length > MAX_BODY_BYTES) return next(payloadTooLarge(MAX_BODY_BYTES));
      next();
    });

    app.get('/', (_req, res) => {
      res.type('html').send(dashboardPage(cspNonce(res)));
    });
    app.get('/health', (_req, res) => {
      res.json({ status: 'ok', ...versionInfo(), instances: this.registry.size, checksInFlight: this.checker.checksInFlight, ...(this.replication?.health() ?? { store: 'file' }) });
    });
    app.get('/replicas/link', replicaLink);
    app.use(platformStatusRoutes(this.options.platformStatusFile));

    app.get('/services', (req, res) => {
      // A ServicesListing, written in pieces (5,000 instances are about 5 MB).
      sendJsonList(res, 'instances' satisfies keyof ServicesListing, this.registry.list(namesFrom(req.query)), toView);
    });

    // The hot path serves POST /services before express sees it (registerEndpoint.ts); this route
    // serves it when the app is mounted on its own, and compressed bodies.
    app.post('/services', async (req, res) => {
      if (!req.is('application/json')) throw new HttpError(415, 'unsupported_media_type', 'send the registration as application/json');
      res.status(200).json(await this.changes.register(req.body, req.socket.remoteAddress));
    });

    // The reference Go client sends the URL as the body, without a Content-Type.
    app.delete('/services', limitBody(express.text({ type: () => true, limit: DEFAULT_JSON_LIMIT }), MAX_BODY_BYTES, 'any'), async (req, res) => {
      const raw = typeof req.body === 'string' ? req.body.trim() : '';
      if (!raw) throw new HttpError(400, 'invalid_field', 'body: send the serviceURL to deregister as text/plain');
      const url = parseWith(httpUrl, raw, 'invalid_field');
      res.json({ deregistered: await this.changes.deregister(this.registry.getByUrl(url), `at ${url}`) });
    });

    app.delete('/services/:instanceId', async (req, res) => {
      const { instanceId } = parseWith(instanceIdParam, req.params, 'invalid_field');
      res.json({ deregistered: await this.changes.deregister(this.registry.get(instanceId), `with id ${instanceId}`) });
    });

    app.put('/services/:instanceId/lease', async (req, res) => {
      const { instanceId } = parseWith(instanceIdParam, req.params, 'invalid_field');
      res.json(await this.changes.renewLease(instanceId));
    });

    app.get('/services/stream', (req, res) => {
      this.stream.open(req, res, namesFrom(req.query));
    });
    app.use(
      readRoutes({
        registry: this.registry,
        replication: this.replication,
        timeline: this.timeline,
        self: () => ({ id: this.options.replicaId ?? 'registry', url: this.url }),
        etcdEndpoints: this.options.store === 'etcd' ? this.options.etcdEndpoints : [],
      }),
    );

    app.all('/services', methodNotAllowed(['GET', 'POST', 'DELETE']));
    app.all('/services/stream', methodNotAllowed(['GET']));
    app.all('/services/:instanceId', methodNotAllowed(['GET', 'DELETE']));
    app.all('/services/:instanceId/lease', methodNotAllowed(['PUT']));
    app.all('/health', methodNotAllowed(['GET']));
    app.all('/replicas', methodNotAllowed(['GET']));
    finishApp(app, this.logger);
    return app;
  }
}
