import http from 'node:http';
import express, { type Express, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Logger } from 'winston';
import { InstanceIdInUse, Registry, toView, type InstanceRecord } from './registry.ts';
import { HealthChecker } from './healthChecker.ts';
import { ExpiryWatcher } from './expiryWatcher.ts';
import { Notifier } from './notifier.ts';
import { Announcer } from './announcer.ts';
import { Outbound } from './outbound.ts';
import { RegistrationStore } from './store.ts';
import { FileCatalogStore, type CatalogStore } from './catalogStore.ts';
import { EtcdStore } from './etcdStore.ts';
import { ReplicaSet } from './replicaSet.ts';
import { Takeover } from './takeover.ts';
import { Etcd3 } from 'etcd3';
import { randomUUID } from 'node:crypto';
import { HostCheck } from './hostCheck.ts';
import { registryMetrics } from './metrics.ts';
import type { RegistryOptions } from './config.ts';
import { registrationSchema, type LeaseResponse, type RegisterResponse, type ServicesListing } from './protocol.ts';
import { createApp, finishApp, listen, closeServer, boundPort, DEFAULT_JSON_LIMIT } from '../shared/http.ts';
import { HttpError, methodNotAllowed, payloadTooLarge } from '../shared/errors.ts';
import { bearerMatches } from '../shared/auth.ts';
import { parseBody, parseWith, httpUrl } from '../shared/validate.ts';
import type { prom } from '../shared/metrics.ts';
import { createLogger } from '../shared/logger.ts';
import { isLoopback } from '../shared/config.ts';
import { dashboardPage } from './dashboard.ts';
import { cspNonce } from '../shared/pageHeaders.ts';
import { RateLimitedLog } from './rateLimitedLog.ts';
import { registerEndpoint } from './registerEndpoint.ts';
import { RegistryStream } from './stream.ts';
import { limitBody } from '../shared/bodyLimit.ts';

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
  /** With REGISTRY_STORE=etcd: the client, the replicas and who owns what. */
  private readonly etcd?: Etcd3;
  private replicas?: ReplicaSet;
  private readonly takeover?: Takeover;
  private readonly checker: HealthChecker;
  private readonly expiry: ExpiryWatcher;
  private readonly notifier: Notifier;
  private readonly announcer: Announcer;
  private readonly stream: RegistryStream;
  private readonly hostCheck: HostCheck;
  private readonly registrations: prom.Counter;
  private readonly changeLog: RateLimitedLog;

  constructor(readonly options: RegistryOptions) {
    this.logger = options.logger ?? createLogger('registry');
    this.changeLog = new RateLimitedLog(this.logger);
    const { metrics, registrations, checkObserver, notifierObserver } = registryMetrics(this.registry);
    this.metrics = metrics;
    this.registrations = registrations;
    if (options.store === 'etcd') {
      // A call etcd doesn't answer within 2 s fails, so a write answers 503 instead of hanging.
      this.etcd = new Etcd3({ hosts: options.etcdEndpoints, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }) });
      this.store = new EtcdStore(this.etcd, this.registry, this.logger);
    } else this.store = new FileCatalogStore(new RegistrationStore(options.dataDir, this.logger));
    // Nothing is owned until this replica is in the set; one registry alone (file) owns everything.
    const owns = this.etcd ? (id: string) => this.replicas?.owns(id) ?? false : undefined;
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
    if (owns) {
      this.takeover = new Takeover(this.registry, owns, {
        adopt: (record) => {
          this.checker.checkSoon(record.instanceId);
          this.announcer.adopt(record);
        },
        release: (id) => this.notifier.forget(id),
      });
    }
    this.registry.on('change', (change) => this.stream.onChange(change));
    this.hostCheck = new HostCheck(options.allowForeignHosts);
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
      if (!this.takeover) this.checker.checkSoon(record.instanceId); // replicas check what they adopt
    }
    if (restored.length) this.logger.info(`restored ${restored.length} registration(s); checking them now`);
    await this.store.follow();
    const handler = registerEndpoint({
      limit: MAX_BODY_BYTES,
      authorize: this.authorize,
      register: (body, remoteAddress) => this.register(body, remoteAddress),
      fallback: this.app,
      logger: this.logger,
    });
    this.server = await listen(handler, this.options.host, this.options.port);
    if (this.etcd && this.takeover) {
      const takeover = this.takeover;
      this.replicas = new ReplicaSet(this.etcd, this.options.replicaId ?? randomUUID().slice(0, 8), this.url, this.options.replicaLeaseSeconds, this.logger);
      this.replicas.on('changed', () => {
        const { adopted, released } = takeover.rebalance();
        if (adopted || released) this.logger.info(`took over ${adopted} instance(s), handed over ${released}`);
      });
      await this.replicas.start();
    }
    this.checker.start();
    this.expiry.start();
    if (!this.options.token && !isLoopback(this.options.host)) {
      this.logger.warn(
        `!!! the registry listens on ${this.options.host} without REGISTRY_TOKEN: anyone who can reach it can register and deregister services. Set REGISTRY_TOKEN. !!!`,
      );
    }
    this.logger.info(`registry listening on ${this.url}`);
    return this;
  }

  async stop(): Promise<void> {
    // First out of the set, so the others take over at once.
    await this.replicas?.stop();
    this.checker.stop();
    this.expiry.stop();
    this.stream.close();
    if (this.server) await closeServer(this.server, 1000);
    this.notifier.close();
    this.changeLog.flush();
    await this.store.flush();
    this.store.close();
    this.etcd?.close();
    this.outbound.destroy();
  }

  /** Checks every instance now (used by benchmarks to time one sweep). */
  sweep(): Promise<void> {
    return this.checker.sweep();
  }

  /** Waits until every change so far is on disk: what a 200 to a registration, a deregistration or a lease renewal promises. */
  private async durable(instanceId: string): Promise<void> {
    try {
      await this.store.sync(instanceId);
    } catch (err) {
      throw new HttpError(503, 'store_unavailable', `the change could not be saved (${(err as Error).message}); try again`, { 'Retry-After': '1' });
    }
  }

  /** The replica mode's state: the live replicas with what each owns, and whether etcd answers. */
  private replicaHealth(): Record<string, unknown> {
    if (!this.etcd || !(this.store instanceof EtcdStore)) return { store: 'file' };
    const owned = new Map<string, number>();
    for (const record of this.registry.all()) {
      const owner = this.replicas?.owner(record.instanceId) ?? '';
      owned.set(owner, (owned.get(owner) ?? 0) + 1);
    }
    return {
      store: 'etcd',
      etcd: this.store.unreachable === undefined ? { status: 'ok' } : { status: 'unreachable', reason: this.store.unreachable },
      replica: this.replicas?.id,
      replicas: (this.replicas?.members ?? []).map((r) => ({ id: r.id, url: r.url, owns: owned.get(r.id) ?? 0 })),
    };
  }

  /** With a token set, every call but GET and HEAD needs `Authorization: Bearer <token>`. */
  private authorize = (req: http.IncomingMessage): HttpError | undefined => {
    const token = this.options.token;
    if (!token || req.method === 'GET' || req.method === 'HEAD') return undefined;
    if (bearerMatches(req.headers.authorization, token)) return undefined;
    return new HttpError(401, 'unauthorized', 'this registry needs Authorization: Bearer <REGISTRY_TOKEN> for changes', { 'WWW-Authenticate': 'Bearer' });
  };

  private requireToken: RequestHandler = (req, _res, next) => next(this.authorize(req));

  /** Validates a registration, checks its hosts, registers it, and answers once it is on disk and its first patch is through. */
  private async register(body: unknown, remoteAddress: string | undefined): Promise<RegisterResponse> {
    const registration = parseBody(registrationSchema, body, 'invalid_field');
    await this.hostCheck.assertAllowed(registration, remoteAddress);
    let registered: { record: InstanceRecord; created: boolean };
    try {
      registered = this.registry.register(registration);
    } catch (err) {
      if (err instanceof InstanceIdInUse) throw new HttpError(409, 'instance_id_in_use', `${err.message}; register without instanceId to get one`);
      throw err;
    }
    const { record, created } = registered;
    const [seq] = await Promise.all([this.announcer.answerSeq(record), this.durable(record.instanceId)]);
    this.registrations.inc();
    const verb = created ? 'registered' : 're-registered';
    this.changeLog.info(verb, `${verb} ${record.serviceName} at ${record.serviceURL} (${record.instanceId})`);
    return {
      instanceId: record.instanceId,
      providers: this.registry.providerMap(record.requiredServices),
      seq,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      leaseExpiresAt: record.leaseExpiresAt ? new Date(record.leaseExpiresAt).toISOString() : undefined,
    };
  }

  private buildApp(): Express {
    const app = createApp({ metrics: this.metrics, jsonLimit: DEFAULT_JSON_LIMIT });
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
      res.json({ status: 'ok', instances: this.registry.size, checksInFlight: this.checker.checksInFlight, ...this.replicaHealth() });
    });
    // Replicas hold this open to each other: a peer's crash closes it at once.
    app.get('/replicas/link', (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.write('\n');
      req.socket.setKeepAlive(true, 1000);
    });
    app.get('/replicas', (_req, res) => {
      res.json(this.replicaHealth());
    });

    app.get('/services', (req, res) => {
      const listing: ServicesListing = { instances: this.registry.list(namesFrom(req.query)).map(toView) };
      res.json(listing);
    });

    // The hot path serves POST /services before express sees it (registerEndpoint.ts); this route
    // serves it when the app is mounted on its own, and compressed bodies.
    app.post('/services', async (req, res) => {
      if (!req.is('application/json')) throw new HttpError(415, 'unsupported_media_type', 'send the registration as application/json');
      res.status(200).json(await this.register(req.body, req.socket.remoteAddress));
    });

    const deregister = async (record: InstanceRecord | undefined, what: string) => {
      if (!record) throw new HttpError(404, 'unknown_instance', `no registered instance ${what}`);
      this.registry.remove(record.instanceId, 'deregistered');
      await this.durable(record.instanceId);
      this.changeLog.info('deregistered', `deregistered ${record.serviceName} at ${record.serviceURL}`);
      return toView(record);
    };

    // The reference Go client sends the URL as the body, without a Content-Type.
    app.delete('/services', limitBody(express.text({ type: () => true, limit: DEFAULT_JSON_LIMIT }), MAX_BODY_BYTES, 'any'), async (req, res) => {
      const raw = typeof req.body === 'string' ? req.body.trim() : '';
      if (!raw) throw new HttpError(400, 'invalid_field', 'body: send the serviceURL to deregister as text/plain');
      const url = parseWith(httpUrl, raw, 'invalid_field');
      res.json({ deregistered: await deregister(this.registry.getByUrl(url), `at ${url}`) });
    });

    app.delete('/services/:instanceId', async (req, res) => {
      const { instanceId } = parseWith(instanceIdParam, req.params, 'invalid_field');
      res.json({ deregistered: await deregister(this.registry.get(instanceId), `with id ${instanceId}`) });
    });

    app.put('/services/:instanceId/lease', async (req, res) => {
      const { instanceId } = parseWith(instanceIdParam, req.params, 'invalid_field');
      const record = this.registry.get(instanceId);
      if (!record) throw new HttpError(404, 'unknown_instance', `no registered instance with id ${instanceId}; register again`);
      if (record.ttlSeconds === undefined) throw new HttpError(409, 'no_lease', `instance ${instanceId} is checked by heartbeat, not a lease`);
      this.registry.renewLease(record);
      // A renewal is no change anyone is told of, but its 200 promises it is on disk.
      this.store.changed({ type: 'lease', instance: record });
      await this.durable(record.instanceId);
      const answer: LeaseResponse = {
        instanceId,
        leaseExpiresAt: new Date(record.leaseExpiresAt!).toISOString(),
        providers: this.registry.providerMap(record.requiredServices),
      };
      res.json(answer);
    });

    app.get('/services/stream', (req, res) => {
      this.stream.open(req, res, namesFrom(req.query));
    });

    app.all('/services', methodNotAllowed(['GET', 'POST', 'DELETE']));
    app.all('/services/stream', methodNotAllowed(['GET']));
    app.all('/services/:instanceId', methodNotAllowed(['DELETE']));
    app.all('/services/:instanceId/lease', methodNotAllowed(['PUT']));
    app.all('/health', methodNotAllowed(['GET']));
    app.all('/replicas', methodNotAllowed(['GET']));
    finishApp(app, this.logger);
    return app;
  }
}
