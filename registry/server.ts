import http from 'node:http';
import dns from 'node:dns/promises';
import net from 'node:net';
import express, { type Express, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Logger } from 'winston';
import { InstanceIdInUse, Registry, toView, type InstanceRecord, type RegistryChange } from './registry.ts';
import { HealthChecker } from './healthChecker.ts';
import { Notifier } from './notifier.ts';
import { Outbound } from './outbound.ts';
import { RegistrationStore } from './store.ts';
import {
  registrationSchema,
  type LeaseResponse,
  type RegisterResponse,
  type ServicesListing,
} from './protocol.ts';
import { createApp, finishApp, listen, closeServer, boundPort, DEFAULT_JSON_LIMIT } from '../shared/http.ts';
import { HttpError, methodNotAllowed } from '../shared/errors.ts';
import { bearerMatches } from '../shared/auth.ts';
import { parseBody, parseWith, httpUrl } from '../shared/validate.ts';
import { createMetrics, prom } from '../shared/metrics.ts';
import { createLogger } from '../shared/logger.ts';
import { isLoopback } from '../shared/config.ts';
import { dashboardPage } from './dashboard.ts';
import { cspNonce } from '../shared/pageHeaders.ts';
import { RateLimitedLog } from './rateLimitedLog.ts';
import { registerEndpoint } from './registerEndpoint.ts';
import { RegistryStream } from './stream.ts';
import { limitBody } from '../shared/bodyLimit.ts';

export interface RegistryOptions {
  host: string;
  port: number;
  dataDir: string;
  /** When set, POST, PUT and DELETE need `Authorization: Bearer <token>`. */
  token?: string;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  heartbeatFailures: number;
  heartbeatConcurrency: number;
  evictAfterMs: number;
  notifyTimeoutMs: number;
  notifyRetries: number;
  /** Let a caller register URLs on hosts other than its own address (for registrars behind NAT). */
  allowForeignHosts: boolean;
  logger?: Logger;
}

export const registryDefaults = {
  host: '127.0.0.1',
  port: 3000,
  heartbeatIntervalMs: 1000,
  heartbeatTimeoutMs: 1000,
  heartbeatFailures: 3,
  heartbeatConcurrency: 128,
  evictAfterMs: 10 * 60 * 1000,
  notifyTimeoutMs: 2000,
  notifyRetries: 3,
  allowForeignHosts: false,
} satisfies Partial<RegistryOptions>;

const MAX_BODY_BYTES = 64 * 1024;
const instanceIdParam = z.object({ instanceId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'is not a valid instance id') });
const nameQuery = z.object({ name: z.union([z.string(), z.array(z.string())]).optional() });

/** The promise's value, or undefined once ms have passed. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function namesFrom(query: unknown): string[] | undefined {
  const { name } = parseWith(nameQuery, query);
  if (name === undefined) return undefined;
  return (Array.isArray(name) ? name : [name]).flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
}

/** The central registry: the HTTP surface over Registry, HealthChecker, Notifier and RegistrationStore. */
export class RegistryServer {
  readonly registry = new Registry();
  readonly logger: Logger;
  readonly app: Express;
  private server?: http.Server;
  private readonly outbound = new Outbound((hostPort) => this.checker.peerClosed(hostPort));
  private readonly checker: HealthChecker;
  private readonly notifier: Notifier;
  private readonly store: RegistrationStore;
  private readonly stream: RegistryStream;
  readonly metrics = createMetrics('registry');
  private readonly changeLog: RateLimitedLog;

  constructor(readonly options: RegistryOptions) {
    this.logger = options.logger ?? createLogger('registry');
    this.changeLog = new RateLimitedLog(this.logger);
    this.stream = new RegistryStream(this.registry, undefined, this.metrics);
    const checks = new prom.Counter({ name: 'registry_checks_total', help: 'Heartbeat checks by result', labelNames: ['result'], registers: [this.metrics] });
    const checkLatency = new prom.Histogram({
      name: 'registry_check_latency_seconds',
      help: 'Heartbeat check latency',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.metrics],
    });
    const patchesSent = new prom.Counter({ name: 'registry_patches_sent_total', help: 'Patches delivered', registers: [this.metrics] });
    const patchesFailed = new prom.Counter({ name: 'registry_patches_failed_total', help: 'Patches given up after retries', registers: [this.metrics] });
    const patchLatency = new prom.Histogram({
      name: 'registry_patch_latency_seconds',
      help: 'From a change to its patch being acknowledged',
      buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.metrics],
    });
    const registry = this.registry;
    new prom.Gauge({
      name: 'registry_instances',
      help: 'Registered instances by state',
      labelNames: ['state'],
      registers: [this.metrics],
      collect() {
        let up = 0;
        let down = 0;
        for (const record of registry.all()) record.state === 'up' ? up++ : down++;
        this.set({ state: 'up' }, up);
        this.set({ state: 'down' }, down);
      },
    });
    this.registrations = new prom.Counter({ name: 'registry_registrations_total', help: 'Registrations accepted', registers: [this.metrics] });

    this.checker = new HealthChecker(
      this.registry,
      this.outbound,
      {
        intervalMs: options.heartbeatIntervalMs,
        timeoutMs: options.heartbeatTimeoutMs,
        failuresBeforeDown: options.heartbeatFailures,
        maxConcurrent: options.heartbeatConcurrency,
        evictAfterMs: options.evictAfterMs,
      },
      this.logger,
      {
        onCheck: (record, result) => {
          checks.inc({ result: result.ok ? 'ok' : result.kind });
          checkLatency.observe(result.latencyMs / 1000);
          this.stream.onCheck(record, result);
        },
      },
    );
    this.notifier = new Notifier(this.outbound, { timeoutMs: options.notifyTimeoutMs, retries: options.notifyRetries, token: options.token }, this.logger, {
      onSent: (ms) => {
        patchesSent.inc();
        patchLatency.observe(ms / 1000);
      },
      onFailed: () => patchesFailed.inc(),
    });
    this.store = new RegistrationStore(options.dataDir, this.logger);
    this.registry.on('change', (change) => this.onChange(change));
    this.app = this.buildApp();
  }

  private readonly registrations: prom.Counter;

  get url(): string {
    if (!this.server) throw new Error('registry is not listening');
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${boundPort(this.server)}`;
  }

  async start(): Promise<this> {
    const restored = this.store.load();
    for (const record of restored) {
      if (!this.registry.restore(record)) continue;
      this.checker.checkSoon(record.instanceId);
    }
    if (restored.length) this.logger.info(`restored ${restored.length} registration(s); checking them now`);
    const handler = registerEndpoint({
      limit: MAX_BODY_BYTES,
      authorize: this.authorize,
      register: (body, remoteAddress) => this.register(body, remoteAddress),
      fallback: this.app,
      logger: this.logger,
    });
    this.server = await listen(handler, this.options.host, this.options.port);
    this.checker.start();
    if (!this.options.token && !isLoopback(this.options.host)) {
      this.logger.warn(
        `!!! the registry listens on ${this.options.host} without REGISTRY_TOKEN: anyone who can reach it can register and deregister services. Set REGISTRY_TOKEN. !!!`,
      );
    }
    this.logger.info(`registry listening on ${this.url}`);
    return this;
  }

  async stop(): Promise<void> {
    this.checker.stop();
    this.stream.close();
    if (this.server) await closeServer(this.server, 1000);
    this.notifier.close();
    this.changeLog.flush();
    await this.store.flush();
    this.store.close();
    this.outbound.destroy();
  }

  /** Checks every instance now (used by benchmarks to time one sweep). */
  sweep(): Promise<void> {
    return this.checker.sweep();
  }

  private onChange(change: RegistryChange): void {
    const { type, instance } = change;
    this.store.changed(instance, type === 'deregistered' || type === 'evicted');
    if (type === 'registered' || type === 'updated') this.checker.track(instance.instanceId);
    // A subscriber that is down gets nothing until it is up again; then it gets what it missed, merged.
    if (instance.serviceUpdateURL && type === 'down') this.notifier.pause(instance.instanceId);
    const entry = { name: instance.serviceName, url: instance.serviceURL };
    if (change.previous && (change.previous.serviceName !== instance.serviceName || change.previous.serviceURL !== instance.serviceURL)) {
      const old = { name: change.previous.serviceName, url: change.previous.serviceURL };
      for (const dependent of this.registry.dependentsOf(old.name)) this.patch(dependent, [], [old]);
    }
    const offered = instance.state === 'up' && (type === 'registered' || type === 'updated' || type === 'up');
    for (const dependent of this.registry.dependentsOf(instance.serviceName)) {
      if (dependent === instance) continue;
      if (offered) this.patch(dependent, [entry], []);
      else this.patch(dependent, [], [entry]);
    }
    if (offered && instance.serviceUpdateURL) {
      // The instance itself learns every live provider it needs (also after being down: it may have missed patches).
      // A new registration gets this patch even when it is empty, before its answer, as the reference registry does.
      const added = instance.requiredServices.flatMap((name) => this.registry.providers(name).map((url) => ({ name, url })));
      this.notifier.enqueue(instance.instanceId, instance.serviceUpdateURL, added, [], type !== 'up');
      this.notifier.resume(instance.instanceId);
    }
    if (type === 'deregistered' || type === 'evicted') {
      this.notifier.forget(instance.instanceId);
      this.checker.forget(instance.instanceId);
    }
    this.stream.onChange(change);
  }

  private patch(subscriber: InstanceRecord, added: { name: string; url: string }[], removed: { name: string; url: string }[]): void {
    if (!subscriber.serviceUpdateURL) return;
    this.notifier.enqueue(subscriber.instanceId, subscriber.serviceUpdateURL, added, removed);
  }

  /** Waits until every change so far is on disk: what a 200 to a registration, a deregistration or a lease renewal promises. */
  private async durable(): Promise<void> {
    try {
      await this.store.sync();
    } catch (err) {
      throw new HttpError(503, 'store_unavailable', `the change could not be saved (${(err as Error).message}); try again`, { 'Retry-After': '1' });
    }
  }

  /** With a token set, every call but GET and HEAD needs `Authorization: Bearer <token>`. */
  private authorize = (req: http.IncomingMessage): HttpError | undefined => {
    const token = this.options.token;
    if (!token || req.method === 'GET' || req.method === 'HEAD') return undefined;
    if (bearerMatches(req.headers.authorization, token)) return undefined;
    return new HttpError(401, 'unauthorized', 'this registry needs Authorization: Bearer <REGISTRY_TOKEN> for changes', { 'WWW-Authenticate': 'Bearer' });
  };

  private requireToken: RequestHandler = (req, _res, next) => next(this.authorize(req));

  /** Addresses of a host name, cached for a minute: registrations come in bursts and getaddrinfo is slow. */
  private readonly resolved = new Map<string, { addresses: string[]; until: number }>();

  private async addressesOf(hostname: string): Promise<string[]> {
    if (net.isIP(hostname)) return [hostname.replace(/^::ffff:/, '')];
    const cached = this.resolved.get(hostname);
    if (cached && cached.until > Date.now()) return cached.addresses;
    const addresses = (await dns.lookup(hostname, { all: true })).map((a) => a.address.replace(/^::ffff:/, ''));
    if (this.resolved.size > 1000) this.resolved.clear();
    this.resolved.set(hostname, { addresses, until: Date.now() + 60_000 });
    return addresses;
  }

  /** The registering caller must own the host it asks us to call: its own address (or loopback to loopback). */
  private async assertOwnsHost(remoteAddress: string | undefined, serviceURL: string): Promise<void> {
    if (this.options.allowForeignHosts) return;
    const remote = (remoteAddress ?? '').replace(/^::ffff:/, '');
    const hostname = new URL(serviceURL).hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    try {
      addresses = await this.addressesOf(hostname);
    } catch {
      throw new HttpError(400, 'invalid_field', `serviceURL: host "${hostname}" does not resolve`);
    }
    const owns = addresses.some((address) => address === remote || (isLoopback(address) && isLoopback(remote)));
    if (!owns) {
      throw new HttpError(
        403,
        'foreign_host',
        `serviceURL: host "${hostname}" is not the caller's address (${remote}); a service may only register URLs on its own host`,
      );
    }
  }

  /** Validates a registration body, checks its hosts, registers it, and gives the answer. */
  private async register(body: unknown, remoteAddress: string | undefined): Promise<RegisterResponse> {
    const registration = parseBody(registrationSchema, body, 'invalid_field');
    const host = new URL(registration.serviceURL).hostname;
    for (const field of ['heartbeatURL', 'serviceUpdateURL'] as const) {
      const value = registration[field];
      if (value && new URL(value).hostname !== host) {
        throw new HttpError(400, 'foreign_host', `${field}: must be on the serviceURL's host (${host}), got ${new URL(value).hostname}`);
      }
    }
    await this.assertOwnsHost(remoteAddress, registration.serviceURL);
    const previousId = this.registry.getByUrl(registration.serviceURL)?.instanceId;
    const newId = registration.instanceId;
    // A restarted instance that brings a new id keeps its patch queue (and its seq), moved before the change announces it.
    if (previousId && newId && newId !== previousId && !this.registry.get(newId)) this.notifier.rename(previousId, newId);
    let registered: { record: InstanceRecord; created: boolean };
    try {
      registered = this.registry.register(registration);
    } catch (err) {
      if (err instanceof InstanceIdInUse) throw new HttpError(409, 'instance_id_in_use', `${err.message}; register without instanceId to get one`);
      throw err;
    }
    const { record, created } = registered;
    // The first patch is on its way; it is answered before we are, as the reference registry does (bounded by the notify timeout).
    const firstPatch = record.serviceUpdateURL ? withTimeout(this.notifier.delivered(record.instanceId), this.options.notifyTimeoutMs) : undefined;
    await this.durable();
    const seq = (await firstPatch) ?? this.notifier.lastSeq(record.instanceId);
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
      if (length > MAX_BODY_BYTES) return next(new HttpError(413, 'payload_too_large', `request body is larger than the limit of ${MAX_BODY_BYTES} bytes`));
      next();
    });

    app.get('/', (_req, res) => {
      res.type('html').send(dashboardPage(cspNonce(res)));
    });
    app.get('/health', (_req, res) => {
      res.json({ status: 'ok', instances: this.registry.size, checksInFlight: this.checker.checksInFlight });
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
      await this.durable();
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
      this.store.changed(record);
      await this.durable();
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
    finishApp(app, this.logger);
    return app;
  }
}
