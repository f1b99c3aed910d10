/**
 * The events service: the reference multicast API (registerAndKeepAlive, deregister, sendMessage,
 * listSubscribers), the platform's POST /publish with topics, the subscribers of registered services
 * (followed through the registry), a live tail, and /metrics. Registers as "events".
 */
import express, { type Request, type Router } from 'express';
import { startService, type Service } from '../shared/service.ts';
import { withLogShipping } from '../logservice/client.ts';
import { withHousekeeping } from '../shared/housekeeping.ts';
import { sqliteHousekeepingDefaults } from '../shared/sqliteBackup.ts';
import { createLogger } from '../shared/logger.ts';
import { HttpError, badRequest, methodNotAllowed } from '../shared/errors.ts';
import { limitBody } from '../shared/bodyLimit.ts';
import { HostOwnership } from '../shared/hostOwnership.ts';
import { Outbound } from '../registry/outbound.ts';
import { Journal } from './journal.ts';
import { Deliverer } from './delivery.ts';
import { Broker, type BrokerObserver, type Publication } from './broker.ts';
import { SubscriberCatalog, catalogSink } from './catalog.ts';
import { RegistryFollower } from '../registry/follower.ts';
import { EventTail } from './tail.ts';
import { panelPage } from './panel.ts';
import { cspNonce } from '../shared/pageHeaders.ts';
import { readAccess } from '../shared/readAccess.ts';
import { eventsMetrics } from './metrics.ts';
import { isJsonType, type StoredEvent } from './event.ts';
import { TopicFilter, patternProblem, topicProblem } from './topics.ts';
import { AddressSubscriber, type SubscriberSettings } from './subscriber.ts';
import { EVENTS_DEFAULT_PORT, EVENTS_SERVICE, type EventsOptions } from './config.ts';
import { MESSAGE_TOPIC, addressProblem, splitPatterns, type PublishAnswer, type SubscribersListing } from './protocol.ts';
import type { DeliveryObserver } from './delivery.ts';

/** Events in one POST /publish. */
const MAX_BATCH = 10_000;
const MAX_PATTERNS = 32;
const CONTENT_TYPE = /^[\x20-\x7e]{1,200}$/;

function one(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`${name}: give it once, as text`, `invalid_${name}`);
  return value;
}

function addressFrom(req: Request): string {
  const address = one(req, 'address');
  const problem = addressProblem(address);
  if (problem) throw badRequest(`address ${problem}`, 'invalid_address');
  return address!;
}

/** The address, once the caller is known to own its host (unless foreign hosts are allowed): we will POST to it. */
async function ownedAddressFrom(req: Request, ownership: HostOwnership | undefined): Promise<string> {
  const address = addressFrom(req);
  await ownership?.assertOwns(req.socket.remoteAddress, address.slice(0, address.lastIndexOf(':')), 'address');
  return address;
}

function patternsFrom(value: string | undefined, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  const patterns = splitPatterns(value);
  if (patterns.length === 0 || patterns.length > MAX_PATTERNS) throw badRequest(`topics: give 1 to ${MAX_PATTERNS} comma-separated patterns`, 'invalid_topic');
  for (const pattern of patterns) {
    const problem = patternProblem(pattern);
    if (problem) throw badRequest(`topic pattern ${JSON.stringify(pattern.slice(0, 80))} ${problem}`, 'invalid_topic');
  }
  return patterns;
}

function topicOf(topic: unknown, where: string): string {
  const problem = topicProblem(topic);
  if (problem) throw badRequest(`${where} ${problem}${typeof topic === 'string' ? ` (got ${JSON.stringify(topic.slice(0, 80))})` : ''}`, 'invalid_topic');
  return topic as string;
}

/** The events of a POST /publish body, all checked before any is accepted. */
function publications(body: unknown): Publication[] {
  if (body === undefined) throw badRequest('the body is empty; send {"topic","payload"} or an array of them', 'empty_body');
  const items = Array.isArray(body) ? body : [body];
  if (items.length === 0 || items.length > MAX_BATCH) throw badRequest(`an array of 1 to ${MAX_BATCH} events`, 'invalid_event');
  return items.map((item, index) => {
    const where = Array.isArray(body) ? `[${index}].` : '';
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw badRequest(`${where || 'body'}: an event is an object {"topic","payload"}`, 'invalid_event');
    const fields = item as Record<string, unknown>;
    const topic = topicOf(fields.topic ?? fields.Topic, `${where}topic`);
    const payload = 'payload' in fields ? fields.payload : fields.Payload;
    return { topic, contentType: 'application/json', payload: Buffer.from(JSON.stringify(payload ?? null)) };
  });
}

/** Whether the request says it has a body (an empty JSON body reads as {} through the shared parser). */
const declaresBody = (req: Request) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0;

const refs = (events: StoredEvent[]): PublishAnswer => ({ accepted: events.length, events: events.map(({ id, topic, seq }) => ({ id, topic, seq })) });

interface Parts {
  broker: Broker;
  catalog: SubscriberCatalog;
  tail: EventTail;
  options: EventsOptions;
}

function eventRoutes({ broker, catalog, tail, options }: Parts): Router {
  const router = express.Router();
  router.use(readAccess({ service: 'events', registryToken: options.config.registryToken, pages: ['/'], apis: ['/subscribers', '/topics', '/events/stream'] }));
  const raw = limitBody(express.raw({ type: () => true, limit: options.bodyLimit }), options.bodyLimit, 'any');
  const ownership = options.allowForeignHosts ? undefined : new HostOwnership();

  router.post('/registerAndKeepAlive', async (req, res) => {
    const address = await ownedAddressFrom(req, ownership);
    const topics = patternsFrom(one(req, 'topics'), [MESSAGE_TOPIC]);
    const subscriber = await catalog.keepAlive(address, topics).catch((err) => {
      if (err instanceof HttpError) throw err;
      throw new HttpError(503, 'journal_unavailable', 'the subscriber could not be saved; try again', { 'Retry-After': '1' });
    });
    res.json({ address, registeredAt: new Date(subscriber.registeredAt).toISOString(), topics: subscriber.filter.patterns, keepAliveMs: options.keepAliveMs });
  });
  router.all('/registerAndKeepAlive', methodNotAllowed(['POST']));

  router.delete('/deregister', async (req, res) => {
    const address = await ownedAddressFrom(req, ownership);
    if (!catalog.removeAddress(address)) throw new HttpError(404, 'unknown_subscriber', `${address} is not subscribed`);
    res.json({ deregistered: address });
  });
  router.all('/deregister', methodNotAllowed(['DELETE']));

  router.post('/sendMessage', raw, async (req, res) => {
    const topic = topicOf(one(req, 'topic') ?? MESSAGE_TOPIC, 'topic');
    const contentType = req.get('content-type') ?? 'application/octet-stream';
    if (!CONTENT_TYPE.test(contentType)) throw badRequest('Content-Type must be printable text of at most 200 characters', 'invalid_content_type');
    const body: unknown = req.body;
    // JSON and text bodies were read by the shared parsers; JSON goes on as the same value, compactly written.
    let payload: Buffer;
    if (Buffer.isBuffer(body)) payload = body;
    else if (typeof body === 'string') payload = Buffer.from(body);
    else if (body !== undefined && declaresBody(req) && isJsonType(contentType)) payload = Buffer.from(JSON.stringify(body));
    else payload = Buffer.alloc(0);
    const [event] = await broker.publish([{ topic, contentType, payload }]);
    res.json({ id: event.id, topic: event.topic, seq: event.seq });
  });
  router.all('/sendMessage', methodNotAllowed(['POST']));

  router.get('/listSubscribers', (_req, res) => {
    const lines = [...catalog.all()]
      .filter((s): s is AddressSubscriber => s instanceof AddressSubscriber && s.droppedAt === undefined)
      .sort((a, b) => a.registeredAt - b.registeredAt)
      .map((s) => `${s.address} : ${new Date(s.registeredAt).toISOString()}\n`);
    res.type('text/plain').send(lines.join(''));
  });
  router.all('/listSubscribers', methodNotAllowed(['GET']));

  router.post('/publish', async (req, res) => {
    const hasBody = declaresBody(req);
    if (hasBody && !req.is(['application/json', 'application/*+json'])) {
      throw new HttpError(415, 'unsupported_media_type', 'POST /publish takes application/json: {"topic","payload"} or an array of them');
    }
    const events = await broker.publish(publications(hasBody ? req.body : undefined));
    res.status(202).json(refs(events));
  });
  router.all('/publish', methodNotAllowed(['POST']));

  router.get('/', (_req, res) => {
    res.type('html').send(panelPage(cspNonce(res)));
  });

  router.get('/subscribers', (_req, res) => {
    const listing: SubscribersListing = { subscribers: [...catalog.all()].map((s) => s.view()).sort((a, b) => a.key.localeCompare(b.key)) };
    res.json(listing);
  });
  router.all('/subscribers', methodNotAllowed(['GET']));

  router.get('/topics', (_req, res) => {
    res.json({ topics: broker.topics(), lastId: broker.lastId });
  });
  router.all('/topics', methodNotAllowed(['GET']));

  router.get('/events/stream', (req, res) => {
    const topic = one(req, 'topic');
    tail.open(req, res, topic === undefined ? undefined : new TopicFilter(patternsFrom(topic, [])));
  });
  router.all('/events/stream', methodNotAllowed(['GET']));
  return router;
}

/** Opens the journal, restores what was owed, and starts the events service (registered as "events"). */
export async function startEvents(options: EventsOptions): Promise<Service> {
  const logger = createLogger(EVENTS_SERVICE);
  const journal = new Journal(options.config.dataDir);
  const contents = journal.load();
  const tail = new EventTail(options.maxStreams);
  const outbound = new Outbound();
  let broker: Broker | undefined;
  let follower: RegistryFollower | undefined;
  const settings = (since?: number, registeredAt?: number): SubscriberSettings => ({
    since: since ?? broker!.nextId,
    registeredAt: registeredAt ?? Date.now(),
    bounds: { maxEvents: options.queueEvents, maxBytes: options.queueBytes },
    retry: { initialMs: options.retryInitialMs, maxMs: options.retryMaxMs },
    batchMax: options.batchEvents,
  });
  // The observers are filled in once the service's metrics registry exists (before anything is delivered).
  const observers: { broker?: BrokerObserver; delivery?: DeliveryObserver } = {};
  const deliverer = new Deliverer(
    outbound,
    { timeoutMs: options.deliveryTimeoutMs, batchMaxEvents: options.batchEvents, batchMaxBytes: options.batchBytes, retentionMs: options.retentionMs, journalId: contents.journalId },
    {
      onDelivered: (s, e) => observers.delivery?.onDelivered(s, e),
      onRetry: (s) => observers.delivery?.onRetry(s),
      onDropped: (s, n, r) => observers.delivery?.onDropped(s, n, r),
    },
    logger,
  );
  const catalog = new SubscriberCatalog(
    journal,
    settings,
    (subscriber) => subscriber.cursor(broker!.lastId),
    (subscriber) => deliverer.kick(subscriber),
    logger,
  );
  broker = new Broker(
    catalog,
    journal,
    deliverer,
    tail,
    { keepAliveMs: options.keepAliveMs, retentionMs: options.retentionMs, upkeepMs: 250 },
    { onPublished: (e) => observers.broker?.onPublished(e), onDropped: (s, n, r) => observers.broker?.onDropped(s, n, r) },
    logger,
  );
  const stopAll = async () => {
    await follower?.stop();
    tail.close();
    await broker!.stop();
    journal.close();
    outbound.destroy();
  };
  try {
    const service = await startService(withHousekeeping(withLogShipping({
      name: EVENTS_SERVICE,
      requiredServices: ['log'],
      defaultPort: EVENTS_DEFAULT_PORT,
      config: options.config,
      bodyLimit: options.bodyLimit,
      logger,
      routes: (svc) => {
        Object.assign(observers, eventsMetrics(svc.metrics, catalog, journal, tail));
        broker!.restore(contents);
        broker!.start();
        return eventRoutes({ broker: broker!, catalog, tail, options });
      },
      onStop: stopAll,
    }), journal.housekeepingJobs(options.sqlite ?? sqliteHousekeepingDefaults)));
    follower = new RegistryFollower(service.registry, catalogSink(catalog), logger);
    follower.start();
    logger.info(`journal at ${options.config.dataDir}; keep-alive ${options.keepAliveMs} ms, retention ${options.retentionMs} ms`);
    return service;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
