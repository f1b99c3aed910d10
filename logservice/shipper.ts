/**
 * The winston transport that ships every line to a "log" provider found in the service's provider
 * table, in batches (by count and by time). While no log service is known or reachable it keeps a
 * bounded buffer (counting what it must drop), picks the log service up when one appears, honours
 * 503 + Retry-After, and retries a batch under the same batch id so the log service stores it once.
 * It flushes when the logger ends.
 */
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import Transport from 'winston-transport';
import { EqualJitterBackoff } from '../shared/backoff.ts';
import { classifyUpstream } from '../shared/apiError.ts';
import { BATCH_ID_HEADER, SERVICE_NAME_HEADER, type LogRejected } from './protocol.ts';
import { shipperSettings, type LogShipperOptions, type ShipperSettings } from './shipperConfig.ts';
import { ShipBuffer, type Batch } from './shipBuffer.ts';
import { shippable } from './winstonEntry.ts';

export class LogShipper extends Transport {
  private readonly http: AxiosInstance;
  private readonly backoff = new EqualJitterBackoff({ initialMs: 100, maxMs: 5000 });
  private readonly settings: ShipperSettings;
  private readonly buffer: ShipBuffer;
  private inFlight = 0;
  private inFlightLines = 0;
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
    this.settings = shipperSettings(options);
    this.buffer = new ShipBuffer(this.settings);
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
    return this.buffer.lines + this.inFlightLines;
  }

  override log(info: Record<string, unknown>, callback: () => void): void {
    if (this.closing || this.buffered >= this.settings.bufferLines) {
      if (this.dropped++ === 0 || this.dropped % 10_000 === 0) {
        this.status(`log shipping buffer is full (${this.settings.bufferLines} lines); dropping lines (${this.dropped} so far)`);
      }
    } else {
      const queued = this.buffer.add(shippable(info, this.settings.serviceName));
      if (queued >= this.settings.batchLines) this.pump();
      else if (queued === 1) this.schedule(this.settings.batchIntervalMs);
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

  /** Starts as many sends as allowed and ready; called on new lines, timers, answers and provider changes. */
  private pump(): void {
    const wait = this.holdUntil - Date.now();
    if (wait > 0) {
      this.schedule(wait);
      return;
    }
    while (this.inFlight < this.settings.concurrency) {
      if (this.buffer.empty) return;
      const url = this.options.providers.pick(this.settings.logServiceName);
      if (!url) return; // onChange calls pump when a log service appears
      const batch = this.buffer.next(this.closing !== undefined);
      if (!batch) break;
      this.inFlight++;
      this.inFlightLines += batch.entries.length;
      void this.send(batch, url);
    }
    if (this.buffer.queued > 0 && this.inFlight < this.settings.concurrency) this.schedule(this.buffer.dueInMs());
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
        this.buffer.split(batch);
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
      this.buffer.keepForRetry(batch);
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
    this.buffer.hurry();
    this.pump();
    while (this.buffered > 0 && Date.now() < deadline) {
      // Nobody to ship to and nothing in flight: waiting cannot help.
      if (this.inFlight === 0 && !this.options.providers.has(this.settings.logServiceName)) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
      this.buffer.hurry();
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
        this.buffer.clear();
        process.stderr.write(`log shipping: ${left} lines could not reach the log service before exit\n`);
      }
      this.http.defaults.httpAgent?.destroy?.();
    })();
    return this.closing;
  }
}
