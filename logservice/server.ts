/**
 * The log service: POST /log (plain text, JSON, JSON arrays, NDJSON) into rotated JSON-line files,
 * GET /logs to search them (GET /logs/labels, GET /logs/volume beside it), GET /logs/stream to follow
 * them live, and GET / to read them.
 * Registers as "log".
 */
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { startService, type Service } from '../shared/service.ts';
import { createLogger } from '../shared/logger.ts';
import { HttpError, badRequest, methodNotAllowed, payloadTooLarge } from '../shared/errors.ts';
import { prom } from '../shared/metrics.ts';
import { LogStore } from './store.ts';
import { housekeepingOf, withHousekeeping } from '../shared/housekeeping.ts';
import { LiveTail } from './tail.ts';
import { BatchJournal, BatchMemory, BATCH_ID } from './batches.ts';
import { CallerDirectory } from './callers.ts';
import { parseFilter } from './filters.ts';
import { LabelIndex } from './labels.ts';
import { LogQueries } from './queries.ts';
import { parseWith } from '../shared/validate.ts';
import { z } from 'zod';
import { parseJsonBody, parseNdjsonBody, parseTextBody, type ParsedLines } from './ingest.ts';
import { viewerPage } from './viewer.ts';
import { cspNonce } from '../shared/pageHeaders.ts';
import { readAccess } from '../shared/readAccess.ts';
import { limitBody } from '../shared/bodyLimit.ts';
import { LOG_SERVICE_PORT, type LogServiceOptions } from './config.ts';
import { BATCH_ID_HEADER, NDJSON, type LogAccepted, type LogEntry, type LogRejected } from './protocol.ts';
import { withEvents } from '../events/client.ts';
import { REGISTRY_EVENTS, registryEventsHandler } from './registryEvents.ts';

interface Answer {
  status: number;
  body: LogAccepted | LogRejected;
}

interface Parts {
  store: LogStore;
  queries: LogQueries;
  labels: LabelIndex;
  tail: LiveTail;
  batches: BatchMemory<Answer>;
  journal: BatchJournal<Answer>;
  callers: CallerDirectory;
  options: LogServiceOptions;
}

type BodyKind = 'text' | 'json' | 'ndjson';

function bodyKind(req: Request): BodyKind | undefined {
  if (req.is(NDJSON)) return 'ndjson';
  if (req.is(['application/json', 'application/*+json'])) return 'json';
  if (req.is('text/plain')) return 'text';
  return undefined;
}

function hasNameless(entries: LogEntry[]): boolean {
  for (let i = 0; i < entries.length; i++) if (entries[i].service === '') return true;
  return false;
}

function describeRejected(parsed: ParsedLines): string {
  const shown = parsed.rejected.slice(0, 5).map((r) => `line ${r.line}: ${r.reason}`);
  const more = parsed.rejected.length > 5 ? ` (and ${parsed.rejected.length - 5} more bad lines)` : '';
  return `${shown.join('; ')}${more}. Accepted ${parsed.entries.length} of ${parsed.total} lines; the others were not stored.`;
}

function logRoutes(svc: Service, parts: Parts): Router {
  const { store, queries, labels, tail, batches, journal, callers, options } = parts;
  const metrics = [svc.metrics];
  const requests = new prom.Counter({ name: 'log_requests_total', help: 'POST /log requests by outcome', labelNames: ['outcome'], registers: metrics });
  const accepted = new prom.Counter({ name: 'log_lines_accepted_total', help: 'Lines accepted and queued for the files', registers: metrics });
  const rejected = new prom.Counter({ name: 'log_lines_rejected_total', help: 'Lines refused as malformed', registers: metrics });
  new prom.Gauge({ name: 'log_lines_written', help: 'Lines written to the files and fsynced since start', registers: metrics, collect() { this.set(store.linesWritten); } });
  new prom.Gauge({ name: 'log_fsyncs', help: 'fsyncs of the log files since start (one covers every batch written meanwhile)', registers: metrics, collect() { this.set(store.fsyncs); } });
  new prom.Gauge({ name: 'log_write_queue_bytes', help: 'Bytes accepted but not yet written to the files', registers: metrics, collect() { this.set(store.queuedBytes); } });
  new prom.Gauge({ name: 'log_index_entries', help: 'Entries in the in-memory index', registers: metrics, collect() { this.set(store.indexedEntries); } });
  new prom.Gauge({ name: 'log_tail_streams', help: 'Open live tails', registers: metrics, collect() { this.set(tail.size); } });
  new prom.Gauge({ name: 'log_tail_dropped_lines', help: 'Lines live tail readers were told they may have missed', registers: metrics, collect() { this.set(tail.droppedTotal); } });
  new prom.Gauge({ name: 'log_tail_disconnects', help: 'Live tails cut off for leaving more than 1 MiB unread', registers: metrics, collect() { this.set(tail.disconnects); } });

  const busy = (message: string) =>
    new HttpError(503, 'busy', message, { 'Retry-After': String(options.retryAfterSeconds) });

  /** Before reading a body: refuse when shutting down or when the write queue is full; answer repeats. */
  const admit: RequestHandler = async (req, res, next) => {
    if (store.isClosed) {
      requests.inc({ outcome: 'busy' });
      throw busy('the log service is shutting down; retry with another instance or later');
    }
    const batchId = req.get(BATCH_ID_HEADER);
    if (batchId !== undefined && !BATCH_ID.test(batchId)) {
      throw badRequest(`${BATCH_ID_HEADER} must be 1-128 letters, digits, ".", "_", ":" or "-"`, 'invalid_batch_id');
    }
    const seen = batchId ? batches.get(batchId) : undefined;
    if (seen) {
      const answer = await seen;
      requests.inc({ outcome: 'duplicate' });
      res.status(answer.status).json({ ...answer.body, duplicate: true });
      return;
    }
    const size = Number(req.get('content-length')) || (typeof req.body === 'string' ? req.body.length : 0);
    if (size > options.bodyLimit) throw payloadTooLarge(options.bodyLimit);
    if (store.isFull(size)) {
      requests.inc({ outcome: 'busy' });
      throw busy(`the write queue is full (${store.queuedBytes} bytes waiting for the disk); retry after ${options.retryAfterSeconds} s`);
    }
    next();
  };

  const ingest: RequestHandler = async (req, res) => {
    const kind = bodyKind(req);
    if (!kind) {
      throw new HttpError(415, 'unsupported_media_type', 'POST /log takes text/plain ("[Service] - message"), application/json or application/x-ndjson');
    }
    const receivedAt = new Date().toISOString();
    const body: unknown = req.body;
    const parsed =
      kind === 'json'
        ? body === undefined || req.get('content-length') === '0'
          ? { entries: [], rejected: [], total: 0 }
          : parseJsonBody(body, receivedAt)
        : parseKindText(kind, typeof body === 'string' ? body : '', receivedAt);
    // The decoded body is garbage now: held by req until the fsync, it would outlive the young generation.
    req.body = undefined;
    if (parsed.total === 0) {
      requests.inc({ outcome: 'invalid' });
      res.status(400).json({ error: { code: 'empty_body', message: 'the body holds no log lines' }, accepted: 0, rejected: [] } satisfies LogRejected);
      return;
    }

    const batchId = req.get(BATCH_ID_HEADER);
    const goodLines = parsed.entries.length;
    const badLines = parsed.rejected.length;
    const work = (async (): Promise<Answer> => {
      if (hasNameless(parsed.entries)) {
        const name = await callers.nameFor(req);
        for (const entry of parsed.entries) if (entry.service === '') entry.service = name;
      }
      if (store.isClosed) return { status: 503, body: { error: { code: 'busy', message: 'the log service is shutting down' }, accepted: 0, rejected: [] } };
      const answer: Answer =
        badLines === 0
          ? { status: 202, body: { accepted: goodLines } }
          : {
              status: 400,
              body: {
                error: { code: 'invalid_lines', message: describeRejected(parsed) },
                accepted: goodLines,
                rejected: parsed.rejected.slice(0, 100),
              },
            };
      // The answer waits until the lines are written and fsynced; then the journal notes the batch, so a retry after a restart is answered, not stored again.
      // The entries are not referenced past the append: they must not outlive the young generation while the fsync runs.
      const durable = store.append(parsed.entries, receivedAt);
      parsed.entries = [];
      try {
        await durable;
      } catch (err) {
        throw new HttpError(503, 'storage_failed', `the lines were not stored: ${(err as Error).message}`, { 'Retry-After': String(options.retryAfterSeconds) });
      }
      if (batchId) journal.append(batchId, answer);
      return answer;
    })();
    if (batchId) batches.remember(batchId, work);
    let answer: Answer;
    try {
      answer = await work;
    } catch (err) {
      if (batchId) batches.forget(batchId);
      throw err;
    }
    if (answer.status === 503) {
      if (batchId) batches.forget(batchId);
      res.setHeader('Retry-After', String(options.retryAfterSeconds));
      requests.inc({ outcome: 'busy' });
    } else {
      accepted.inc(goodLines);
      rejected.inc(badLines);
      requests.inc({ outcome: answer.status === 202 ? 'accepted' : 'partial' });
    }
    res.status(answer.status).json(answer.body);
  };

  const router = express.Router();
  router.use(readAccess({ service: 'logs', registryToken: svc.config.registryToken, pages: ['/'], apis: ['/logs'] }));
  router.get('/', (_req, res) => {
    res.type('html').send(viewerPage(cspNonce(res)));
  });
  router.post('/log', admit, limitBody(express.text({ type: NDJSON, limit: options.bodyLimit }), options.bodyLimit, [NDJSON]), ingest);
  router.all('/log', methodNotAllowed(['POST']));
  router.get('/logs', async (req: Request, res: Response) => {
    const { filter, limit } = parseFilter(req.query);
    res.json(await queries.search(filter, limit));
  });
  router.all('/logs', methodNotAllowed(['GET']));
  router.get('/logs/labels', async (_req, res) => {
    res.json(await labels.labels());
  });
  router.all('/logs/labels', methodNotAllowed(['GET']));
  router.get('/logs/volume', async (req, res) => {
    const { filter } = parseFilter(req.query);
    const { buckets } = parseWith(volumeQuery, req.query, 'invalid_query');
    res.json(await queries.volume(filter, buckets ?? DEFAULT_BUCKETS));
  });
  router.all('/logs/volume', methodNotAllowed(['GET']));
  // Cheap counters for tools and benchmarks (the same figures as /metrics, without the process metrics).
  router.get('/logs/stats', (_req, res) => {
    res.json({
      linesStored: store.linesStored,
      linesWritten: store.linesWritten,
      queuedBytes: store.queuedBytes,
      indexedEntries: store.indexedEntries,
      indexedBytes: store.indexedBytes,
      liveTails: tail.size,
      memory: process.memoryUsage(),
    });
  });
  router.all('/logs/stats', methodNotAllowed(['GET']));
  router.get('/logs/stream', async (req, res) => {
    const { filter } = parseFilter(req.query);
    tail.open(req, res, await queries.resolveRequestId(filter));
  });
  router.all('/logs/stream', methodNotAllowed(['GET']));
  return router;
}

const DEFAULT_BUCKETS = 60;
const volumeQuery = z.object({ buckets: z.coerce.number().int().min(1).max(500).optional() });

function parseKindText(kind: 'text' | 'ndjson', text: string, receivedAt: string): ParsedLines {
  if (text.trim() === '') return { entries: [], rejected: [], total: 0 };
  return kind === 'text' ? parseTextBody(text, receivedAt) : parseNdjsonBody(text, receivedAt);
}

/** Opens the files and starts the log service (registered as "log"). */
export async function startLogService(options: LogServiceOptions): Promise<Service> {
  const logger = createLogger('log');
  const store = await LogStore.open({
    dataDir: options.config.dataDir,
    maxFileSize: options.maxFileSize,
    retention: options.retention,
    maxTotalBytes: options.retentionBytes,
    queueLimitBytes: options.queueLimitBytes,
    indexEntries: options.indexEntries,
    indexBytes: options.indexBytes,
    queryScanBytes: options.queryScanBytes,
    logger,
  });
  const tail = new LiveTail(options.maxStreams);
  store.on('stored', (entries, lines) => tail.publish(entries, lines));
  const labels = new LabelIndex(options.config.dataDir);
  store.on('stored', (entries) => labels.note(entries));
  const queries = new LogQueries(store, labels);
  const batches = new BatchMemory<Answer>(options.batchMemory, options.batchMemoryMs);
  const journal = new BatchJournal<Answer>(options.config.dataDir, batches);
  const restored = journal.open();
  if (restored) logger.info(`remembering ${restored} batch id(s) from before the restart`);
  try {
    return await startService(withHousekeeping(withEvents({
      name: 'log',
      defaultPort: LOG_SERVICE_PORT,
      config: options.config,
      bodyLimit: options.bodyLimit,
      logger,
      routes: (svc) => logRoutes(svc, { store, queries, labels, tail, batches, journal, callers: new CallerDirectory(svc.registry), options }),
      onStop: async () => {
        tail.close();
        await store.close();
        journal.close();
        logger.info(`log files flushed: ${store.linesWritten} lines written since start`);
      },
    }, { balanced: { [REGISTRY_EVENTS]: registryEventsHandler(store) } }), (svc) => store.housekeepingJobs(options.retentionCron, (job) => housekeepingOf(svc)?.run(job))));
  } catch (err) {
    tail.close();
    await store.close();
    journal.close();
    throw err;
  }
}
