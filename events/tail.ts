/**
 * GET /events/stream: accepted events live, over server-sent events, for `events tail`.
 * A reader that can't keep up loses events (counted and told), never the service's memory.
 */
import type { Request, Response } from 'express';
import { HttpError } from '../shared/errors.ts';
import { lineOf, type StoredEvent } from './event.ts';
import type { TopicFilter } from './topics.ts';

/** Bytes a slow reader may have waiting in its socket before its events are dropped. */
const MAX_UNSENT_BYTES = 1024 * 1024;
const PING_MS = 15_000;

interface Reader {
  res: Response;
  filter?: TopicFilter;
  dropped: number;
}

export class EventTail {
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

  open(req: Request, res: Response, filter?: TopicFilter): void {
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

  publish(events: StoredEvent[]): void {
    for (const reader of this.readers) {
      let text = '';
      let count = 0;
      for (const event of events) {
        if (reader.filter && !reader.filter.matches(event.topic)) continue;
        text += `id: ${event.id}\ndata: ${lineOf(event)}\n\n`;
        count++;
      }
      if (count === 0) continue;
      if (reader.res.writableLength > MAX_UNSENT_BYTES) {
        reader.dropped += count;
        this.droppedTotal += count;
        continue;
      }
      if (reader.dropped > 0) {
        text = `event: dropped\ndata: {"dropped":${reader.dropped}}\n\n${text}`;
        reader.dropped = 0;
      }
      reader.res.write(text);
    }
  }

  close(): void {
    clearInterval(this.ping);
    for (const reader of this.readers) reader.res.end();
    this.readers.clear();
  }
}
