/**
 * GET /logs/stream: a live tail over server-sent events (shared/sseHub.ts), with the same filters as
 * GET /logs; each line's id is its seq. A reader that can't keep up is cut off, never the service's
 * memory: it reconnects with Last-Event-ID and gets the lines it missed while they are still held,
 * or is told how many it may have lost (`event: dropped`).
 */
import type { Request, Response } from 'express';
import { SseHub } from '../shared/sseHub.ts';
import { matches, type LogFilter } from './filters.ts';
import type { LogEntry } from './protocol.ts';

/** Bytes a slow reader may leave unread before it is cut off. */
const MAX_UNSENT_BYTES = 1024 * 1024;
/** Recent lines held for readers that reconnect. */
const REPLAY_BYTES = 2 * 1024 * 1024;
const PING_MS = 15_000;

export class LiveTail {
  private readonly hub: SseHub<LogFilter>;
  /** Lines readers were told they may have lost (of every filter: an upper bound). */
  droppedTotal = 0;

  constructor(maxReaders: number) {
    this.hub = new SseHub<LogFilter>({
      maxClients: maxReaders,
      maxQueuedBytes: MAX_UNSENT_BYTES,
      replayBytes: REPLAY_BYTES,
      heartbeatMs: PING_MS,
      retryMs: 2000,
      greet: ({ missed }) => {
        if (!missed) return [];
        this.droppedTotal += missed;
        return [{ event: 'dropped', data: JSON.stringify({ dropped: missed }) }];
      },
    });
  }

  get size(): number {
    return this.hub.size;
  }

  /** Cut-offs of readers that left more than the cap unread. */
  get disconnects(): number {
    return this.hub.disconnects;
  }

  open(req: Request, res: Response, filter: LogFilter): void {
    this.hub.open(req, res, filter);
  }

  /** Sends the just-stored entries to every reader whose filter they match. */
  publish(entries: LogEntry[], lines: string[]): void {
    if (entries.length === 0) return;
    // With no reader to send to or to hold lines for, the hub needs only the last seq: no event per line.
    if (!this.hub.holding) return this.hub.publish([{ id: entries[entries.length - 1].seq, data: '' }]);
    this.hub.publish(entries.map((entry, i) => ({ id: entry.seq, data: lines[i], match: (filter: LogFilter) => matches(filter, entry) })));
  }

  close(): void {
    this.hub.close();
  }
}
