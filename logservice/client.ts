/**
 * The client side of the log service: a winston transport that ships every line to a "log"
 * provider found in the service's provider table, in batches (by count and by time). While no log
 * service is known or reachable it keeps a bounded buffer (counting what it must drop), picks the
 * log service up when one appears, honours 503 + Retry-After, and retries a batch under the same
 * batch id so the log service stores it once. It flushes when the logger ends.
 */
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import axios, { type AxiosInstance } from 'axios';
import Transport from 'winston-transport';
import { EqualJitterBackoff } from '../shared/backoff.ts';
import { envInt } from '../shared/config.ts';
import { prom } from '../shared/metrics.ts';
import { classifyUpstream } from '../shared/apiError.ts';
import type { Service, StartServiceOptions } from '../shared/service.ts';
import { BATCH_ID_HEADER, SENT_FIELDS, SERVICE_NAME_HEADER, type LogEntry, type LogRejected } from './protocol.ts';

/** What the shipper needs from a provider table (shared/providers.ts ProviderTable fits). */
export interface LogProviders {
  pick(name: string): string | undefined;
  has(name: string): boolean;
  markSuspect?(url: string): void;
  onChange(name: string, listener: (urls: readonly string[]) => void): () => void;
}

export interface LogShipperOptions {
  providers: LogProviders;
  /** The sending service's name (for lines that don't carry one, and the X-Service-Name header). */
  serviceName: string;
  /** The required service's name: "log". */
  logServiceName?: string;
  /** Send when this many lines are waiting… */
  batchLines?: number;
  /** …or when the oldest waiting line is this old. */
  batchIntervalMs?: number;
  /** Largest request body; a bigger batch is split. Keep it under the log service's LOG_BODY_LIMIT. */
  maxBatchBytes?: number;
  /** Lines kept while the log service is unknown or down; newer lines are dropped (and counted) beyond it. */
  bufferLines?: number;
  /** Batches in flight at once. */
  concurrency?: number;
  timeoutMs?: number;
  /** How long the final flush may take when the logger ends. */
  flushTimeoutMs?: number;
  /** Told when shipping breaks down or recovers (not for every retry). */
  onStatus?: (message: string) => void;
  level?: string;
}

interface Batch {
  number: number;
  id: string;
  entries: LogEntry[];
  body: string;
}

/**
 * Lines per batch. At 1,000 (about 250 KB of JSON) a busy service makes half the requests it made
 * at 500, and both it and the log service spend ~20 % less CPU per line (bench/logs.ts).
 */
const DEFAULT_BATCH_LINES = 1000;

/** winston's info keys that become the entry's own fields (its timestamp is the time); the rest are metadata. */
const OWN_KEYS: ReadonlySet<string> = new Set(SENT_FIELDS);

function errorToJson(value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}

function toEntry(info: Record<string, unknown>, serviceName: string): LogEntry {
  const message = info.message;
  const entry: LogEntry = {
    time: typeof info.timestamp === 'string' ? info.timestamp : new Date().toISOString(),
    level: String(info.level),
    service: typeof info.service === 'string' ? info.service : serviceName,
    message: typeof message === 'string' ? message : message instanceof Error ? message.message : JSON.stringify(message) ?? String(message),
  };
  if (typeof info.requestId === 'string') entry.requestId = info.requestId;
  for (const key in info) if (!OWN_KEYS.has(key)) entry[key] = errorToJson(info[key]);
  return entry;
}

export class LogShipper extends Transport {
  private readonly http: AxiosInstance;
  private readonly prefix = randomBytes(6).toString('hex');
  private readonly backoff = new EqualJitterBackoff({ initialMs: 100, maxMs: 5000 });
  private readonly settings: Required<Omit<LogShipperOptions, 'onStatus' | 'level' | 'providers'>>;
  /** Entries in the wire shape; winston's info objects are queued as they are (they serialize the same). */
  private queue: LogEntry[] = [];
  private oldestQueuedAt = 0;
  private readonly retry: Batch[] = [];
  private retryLines = 0;
  private inFlight = 0;
  private inFlightLines = 0;
  private batchNumber = 0;
  private holdUntil = 0;
  private timer?: NodeJS.Timeout;
  private timerDue = Infinity;
  private closing?: Promise<void>;
  private troubled = false;
  private readonly unsubscribe: () => void;

  /** Lines the log service accepted. */
  shipped = 0;
  /** Lines dropped because the buffer was full (or undeliverable at shutdown). */
  dropped = 0;
  /** Lines the log service refused as malformed. */
  rejected = 0;
  /** POST /log requests made (retries included). */
  posts = 0;
  retries = 0;
  /** 503/429 answers (the log service's write queue was full), each waited out per Retry-After. */
  throttled = 0;

  constructor(private readonly options: LogShipperOptions) {
    super({ level: options.level });
    this.settings = {
      serviceName: options.serviceName,
      logServiceName: options.logServiceName ?? 'log',
      batchLines: Math.max(1, options.batchLines ?? DEFAULT_BATCH_LINES),
      batchIntervalMs: options.batchIntervalMs ?? 200,
      maxBatchBytes: options.maxBatchBytes ?? 1024 * 1024,
      bufferLines: options.bufferLines ?? 10_000,
      concurrency: Math.max(1, options.concurrency ?? 2),
      timeoutMs: options.timeoutMs ?? 10_000,
      flushTimeoutMs: options.flushTimeoutMs ?? 4000,
    };
    const agentOptions = { keepAlive: true, maxSockets: this.settings.concurrency };
    this.http = axios.create({
      timeout: this.settings.timeoutMs,
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
      maxRedirects: 0,
      validateStatus: () => true,
      transformRequest: [(data: unknown) => data],
      headers: { 'content-type': 'application/json', [SERVICE_NAME_HEADER]: options.serviceName },
    });
    this.unsubscribe = options.providers.onChange(this.settings.logServiceName, (urls) => {
      // A log service (re)appeared: try it now rather than after the backoff meant for the old one.
      if (urls.length > 0 && this.troubled) {
        this.holdUntil = 0;
        this.backoff.reset();
      }
      this.pump();
    });
  }

  /** Lines waiting to be shipped (queued, waiting for a retry, or in flight). */
  get buffered(): number {
    return this.queue.length + this.retryLines + this.inFlightLines;
  }

  override log(info: Record<string, unknown>, callback: () => void): void {
    if (this.closing || this.buffered >= this.settings.bufferLines) {
      if (this.dropped++ === 0 || this.dropped % 10_000 === 0) {
        this.status(`log shipping buffer is full (${this.settings.bufferLines} lines); dropping lines (${this.dropped} so far)`);
      }
    } else {
      if (this.queue.length === 0) this.oldestQueuedAt = Date.now();
      // winston's info object already is a valid entry (timestamp is read as time): ship it as it is.
      // Only odd ones (no string message, no service) are copied into shape.
      const ready = typeof info.message === 'string' && typeof info.service === 'string';
      this.queue.push(ready ? (info as LogEntry) : toEntry(info, this.settings.serviceName));
      if (this.queue.length >= this.settings.batchLines) this.pump();
      else if (this.queue.length === 1) this.schedule(this.settings.batchIntervalMs);
    }
    callback();
  }

  /** The transport's end (winston ends it when the logger ends): ship what is left first. */
  override _final(callback: (error?: Error | null) => void): void {
    void this.close().then(() => callback());
  }

  private status(message: string): void {
    this.options.onStatus?.(message);
  }

  private schedule(delayMs: number): void {
    const due = Date.now() + delayMs;
    if (this.timer && this.timerDue <= due) return;
    clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.pump();
    }, delayMs);
    this.timer.unref();
  }

  private takeBatch(): Batch {
    let count = Math.min(this.queue.length, this.settings.batchLines);
    let body = '';
    let entries: LogEntry[];
    for (;;) {
      entries = this.queue.slice(0, count);
      body = JSON.stringify(entries);
      if (body.length <= this.settings.maxBatchBytes || count === 1) break;
      count = Math.ceil(count / 2);
    }
    this.queue = this.queue.slice(count);
    if (this.queue.length > 0) this.oldestQueuedAt = Date.now();
    return this.newBatch(entries, body);
  }

  private newBatch(entries: LogEntry[], body = JSON.stringify(entries)): Batch {
    const number = this.batchNumber++;
    return { number, id: `${this.prefix}-${number}`, entries, body };
  }

  private keepForRetry(batch: Batch): void {
    let at = this.retry.length;
    while (at > 0 && this.retry[at - 1].number > batch.number) at--;
    this.retry.splice(at, 0, batch);
    this.retryLines += batch.entries.length;
  }

  private nextBatch(): Batch | undefined {
    const retry = this.retry.shift();
    if (retry) {
      this.retryLines -= retry.entries.length;
      return retry;
    }
    const due = this.queue.length >= this.settings.batchLines || this.closing !== undefined || Date.now() - this.oldestQueuedAt >= this.settings.batchIntervalMs;
    return this.queue.length > 0 && due ? this.takeBatch() : undefined;
  }

  /** Starts as many sends as allowed and ready; called on new lines, timers, answers and provider changes. */
  private pump(): void {
    const wait = this.holdUntil - Date.now();
    if (wait > 0) {
      this.schedule(wait);
      return;
    }
    while (this.inFlight < this.settings.concurrency) {
      if (this.retry.length === 0 && this.queue.length === 0) return;
      const url = this.options.providers.pick(this.settings.logServiceName);
      if (!url) return; // onChange calls pump when a log service appears
      const batch = this.nextBatch();
      if (!batch) break;
      this.inFlight++;
      this.inFlightLines += batch.entries.length;
      void this.send(batch, url);
    }
    if (this.queue.length > 0 && this.inFlight < this.settings.concurrency) {
      this.schedule(Math.max(0, this.oldestQueuedAt + this.settings.batchIntervalMs - Date.now()));
    }
  }

  private async send(batch: Batch, url: string): Promise<void> {
    let retryAfterMs: number | undefined;
    let problem: string | undefined;
    try {
      this.posts++;
      const res = await this.http.post(`${url}/log`, batch.body, { headers: { [BATCH_ID_HEADER]: batch.id } });
      if (res.status === 202) {
        this.shipped += batch.entries.length;
      } else if (res.status === 400) {
        // Some lines were malformed: the rest were stored. Sending again would not fix them.
        const answer = res.data as Partial<LogRejected>;
        const accepted = typeof answer.accepted === 'number' ? answer.accepted : 0;
        this.shipped += accepted;
        this.rejected += batch.entries.length - accepted;
        this.status(`the log service refused ${batch.entries.length - accepted} lines: ${answer.error?.message ?? 'bad request'}`);
      } else if (res.status === 413 && batch.entries.length > 1) {
        // Nothing was stored: send the halves as new batches.
        const half = Math.ceil(batch.entries.length / 2);
        this.keepForRetry(this.newBatch(batch.entries.slice(0, half)));
        this.keepForRetry(this.newBatch(batch.entries.slice(half)));
      } else if (res.status === 413) {
        this.dropped++;
        this.status('a log line is larger than the log service accepts; dropped it');
      } else {
        const seconds = Number(res.headers['retry-after']);
        if (res.status === 503 || res.status === 429) this.throttled++;
        if ((res.status === 503 || res.status === 429) && Number.isFinite(seconds)) retryAfterMs = seconds * 1000;
        problem = `answered ${res.status}`;
      }
    } catch (err) {
      const failure = classifyUpstream(err);
      if (failure?.kind === 'refused') this.options.providers.markSuspect?.(url);
      problem = `unreachable (${failure && 'reason' in failure ? failure.reason : (err as Error).message})`;
    } finally {
      this.inFlight--;
      this.inFlightLines -= batch.entries.length;
    }
    if (problem === undefined) {
      this.backoff.reset();
      if (this.troubled) {
        this.troubled = false;
        this.status(`log shipping resumed to ${url} (${this.dropped} lines dropped so far)`);
      }
    } else {
      this.retries++;
      this.keepForRetry(batch);
      this.holdUntil = Date.now() + (retryAfterMs ?? this.backoff.nextDelayMs());
      if (!this.troubled && retryAfterMs === undefined) {
        this.troubled = true;
        this.status(`the log service at ${url} ${problem}; buffering up to ${this.settings.bufferLines} lines and retrying`);
      }
    }
    this.pump();
  }

  /** Ships everything waiting now; resolves when all of it is acknowledged, or when timeoutMs passes. */
  async flush(timeoutMs = this.settings.flushTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.oldestQueuedAt = 0;
    this.pump();
    while (this.buffered > 0 && Date.now() < deadline) {
      // Nobody to ship to and nothing in flight: waiting cannot help.
      if (this.inFlight === 0 && !this.options.providers.has(this.settings.logServiceName)) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
      this.oldestQueuedAt = 0;
      if (this.inFlight === 0) this.pump();
    }
  }

  /** Flushes, then stops: later lines only reach the other transports (the console). */
  override close(timeoutMs = this.settings.flushTimeoutMs): Promise<void> {
    this.closing ??= (async () => {
      // Lines the logger still holds reach log() before this tick ends.
      await new Promise((resolve) => setImmediate(resolve));
      this.holdUntil = Math.min(this.holdUntil, Date.now() + 500);
      await this.flush(timeoutMs);
      this.unsubscribe();
      clearTimeout(this.timer);
      const left = this.buffered;
      if (left > 0) {
        this.dropped += left;
        this.queue = [];
        this.retry.length = 0;
        this.retryLines = 0;
        process.stderr.write(`log shipping: ${left} lines could not reach the log service before exit\n`);
      }
      this.http.defaults.httpAgent?.destroy?.();
    })();
    return this.closing;
  }
}

/** The shipper's settings from the environment (see README). */
export function logShipperSettings(env: NodeJS.ProcessEnv = process.env): Partial<LogShipperOptions> {
  return {
    batchLines: envInt('LOG_SHIP_BATCH_LINES', DEFAULT_BATCH_LINES, env),
    batchIntervalMs: envInt('LOG_SHIP_INTERVAL_MS', 200, env),
    bufferLines: envInt('LOG_SHIP_BUFFER_LINES', 10_000, env),
    maxBatchBytes: envInt('LOG_SHIP_MAX_BYTES', 1024 * 1024, env),
    concurrency: envInt('LOG_SHIP_CONCURRENCY', 2, env),
    timeoutMs: envInt('LOG_SHIP_TIMEOUT_MS', 10_000, env),
    flushTimeoutMs: envInt('LOG_SHIP_FLUSH_TIMEOUT_MS', 4000, env),
  };
}

/**
 * Adds a LogShipper to a service's logger, with its counts in the service's metrics, its troubles in the
 * logger itself (they are shipped once the log service is back), and its final flush as the last step of stop().
 */
export function attachLogShipper(svc: Service, settings: Partial<LogShipperOptions> = {}): LogShipper {
  const { logger } = svc;
  const shipper = new LogShipper({
    ...logShipperSettings(),
    ...settings,
    providers: svc.providers,
    serviceName: svc.name,
    onStatus: (message) => {
      if (logger.writable) logger.warn(message);
    },
  });
  logger.add(shipper);
  // Ending the logger starts the shipper's final flush; stop() waits until it is done.
  svc.addShutdownStep(() => shipper.close());
  const registers = [svc.metrics];
  const gauge = (name: string, help: string, read: () => number) =>
    new prom.Gauge({ name, help, registers, collect() { this.set(read()); } });
  gauge('log_shipper_shipped_lines', 'Lines the log service accepted from this service', () => shipper.shipped);
  gauge('log_shipper_dropped_lines', 'Lines dropped because the shipping buffer was full', () => shipper.dropped);
  gauge('log_shipper_rejected_lines', 'Lines the log service refused as malformed', () => shipper.rejected);
  gauge('log_shipper_buffered_lines', 'Lines waiting to be shipped', () => shipper.buffered);
  gauge('log_shipper_posts', 'POST /log requests made, retries included', () => shipper.posts);
  gauge('log_shipper_throttled', 'Answers 503/429 from the log service (waited out per Retry-After)', () => shipper.throttled);
  return shipper;
}

/**
 * A service's options with its lines shipped to the log service ("log" is added to what it requires), for its
 * starter to pass to startService, as the Go course's main sets the client logger. Lines from start-up on are shipped.
 */
export function withLogShipping(options: StartServiceOptions): StartServiceOptions {
  return {
    ...options,
    requiredServices: [...new Set([...(options.requiredServices ?? []), 'log'])],
    setup: (svc) => {
      options.setup?.(svc);
      attachLogShipper(svc);
    },
  };
}

/** The shipper a service's logger ships through, if it has one. */
export function logShipperOf(svc: Service): LogShipper | undefined {
  return svc.logger.transports.find((transport): transport is LogShipper => transport instanceof LogShipper);
}
