/**
 * GET /logs/stream: a live tail over server-sent events, with the same filters as GET /logs.
 * A reader that can't keep up loses lines (counted and told), never the service's memory.
 */
import type { Request, Response } from 'express';
import { HttpError } from '../shared/errors.ts';
import { matches, type LogFilter } from './filters.ts';
import type { LogEntry } from './protocol.ts';

/** Bytes a slow reader may have waiting in its socket before its lines are dropped. */
const MAX_UNSENT_BYTES = 1024 * 1024;
const PING_MS = 15_000;

interface Reader {
  res: Response;
  filter: LogFilter;
  dropped: number;
}

export class LiveTail {
  private readonly readers = new Set<Reader>();
  private readonly ping: NodeJS.Timeout;
  droppedTotal = 0;

  constructor(private readonly maxReaders: number) {
    this.ping = setInterval(() => {
      for (const reader of this.readers) reader.res.write(': ping\n\n');
    }, PING_MS);
    this.ping.unref();
  }

  get size(): number {
    return this.readers.size;
  }

  open(req: Request, res: Response, filter: LogFilter): void {
    if (this.readers.size >= this.maxReaders) {
      throw new HttpError(503, 'too_many_streams', `at most ${this.maxReaders} live tails at once`, { 'Retry-After': '5' });
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n: live\n\n');
    const reader: Reader = { res, filter, dropped: 0 };
    this.readers.add(reader);
    req.on('close', () => this.readers.delete(reader));
  }

  /** Sends the just-stored entries to every reader whose filter they match. */
  publish(entries: LogEntry[], lines: string[]): void {
    for (const reader of this.readers) {
      let events = '';
      let count = 0;
      for (let i = 0; i < entries.length; i++) {
        if (!matches(reader.filter, entries[i])) continue;
        events += `id: ${entries[i].seq}\ndata: ${lines[i]}\n\n`;
        count++;
      }
      if (count === 0) continue;
      if (reader.res.writableLength > MAX_UNSENT_BYTES) {
        reader.dropped += count;
        this.droppedTotal += count;
        continue;
      }
      if (reader.dropped > 0) {
        events = `event: dropped\ndata: {"dropped":${reader.dropped}}\n\n${events}`;
        reader.dropped = 0;
      }
      reader.res.write(events);
    }
  }

  close(): void {
    clearInterval(this.ping);
    for (const reader of this.readers) reader.res.end();
    this.readers.clear();
  }
}
