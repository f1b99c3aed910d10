/**
 * The lines a shipper holds: new ones in arrival order, cut into batches when due (by count or by
 * age), and batches to send again, oldest first and under their own ids (so the log service stores
 * each once). No I/O: the shipper asks it for the next batch and gives back the ones that failed.
 */
import { randomBytes } from 'node:crypto';
import type { LogEntry } from './protocol.ts';

export interface Batch {
  number: number;
  id: string;
  entries: LogEntry[];
  body: string;
}

export interface BatchLimits {
  batchLines: number;
  batchIntervalMs: number;
  maxBatchBytes: number;
}

export class ShipBuffer {
  private readonly prefix = randomBytes(6).toString('hex');
  /** Entries in the wire shape; winston's info objects are queued as they are (they serialize the same). */
  private queue: LogEntry[] = [];
  private oldestQueuedAt = 0;
  private readonly retry: Batch[] = [];
  private retryLines = 0;
  private batchNumber = 0;

  constructor(private readonly limits: BatchLimits) {}

  /** Lines held: queued or waiting to be sent again (not those in flight). */
  get lines(): number {
    return this.queue.length + this.retryLines;
  }

  get queued(): number {
    return this.queue.length;
  }

  get empty(): boolean {
    return this.retry.length === 0 && this.queue.length === 0;
  }

  /** Queues a line; gives how many are queued now. */
  add(entry: LogEntry): number {
    if (this.queue.length === 0) this.oldestQueuedAt = Date.now();
    return this.queue.push(entry);
  }

  /** Milliseconds until the oldest queued line has waited batchIntervalMs. */
  dueInMs(): number {
    return Math.max(0, this.oldestQueuedAt + this.limits.batchIntervalMs - Date.now());
  }

  /** Makes what is queued due now (a flush). */
  hurry(): void {
    this.oldestQueuedAt = 0;
  }

  /** The next batch to send: one to send again first; then new lines when due, and always when `closing`. */
  next(closing: boolean): Batch | undefined {
    const retry = this.retry.shift();
    if (retry) {
      this.retryLines -= retry.entries.length;
      return retry;
    }
    const due = this.queue.length >= this.limits.batchLines || closing || Date.now() - this.oldestQueuedAt >= this.limits.batchIntervalMs;
    return this.queue.length > 0 && due ? this.take() : undefined;
  }

  /** A batch that was not stored goes back, in number order, to be sent again under its id. */
  keepForRetry(batch: Batch): void {
    let at = this.retry.length;
    while (at > 0 && this.retry[at - 1].number > batch.number) at--;
    this.retry.splice(at, 0, batch);
    this.retryLines += batch.entries.length;
  }

  /** A batch too large for the log service (nothing of it was stored): its halves are sent as new batches. */
  split(batch: Batch): void {
    const half = Math.ceil(batch.entries.length / 2);
    this.keepForRetry(this.newBatch(batch.entries.slice(0, half)));
    this.keepForRetry(this.newBatch(batch.entries.slice(half)));
  }

  /** Forgets every line held (at exit, once the final flush has given up). */
  clear(): void {
    this.queue = [];
    this.retry.length = 0;
    this.retryLines = 0;
  }

  /** Up to batchLines queued lines, halved until their body fits maxBatchBytes (one line always goes). */
  private take(): Batch {
    let count = Math.min(this.queue.length, this.limits.batchLines);
    let body = '';
    let entries: LogEntry[];
    for (;;) {
      entries = this.queue.slice(0, count);
      body = JSON.stringify(entries);
      if (body.length <= this.limits.maxBatchBytes || count === 1) break;
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
}
