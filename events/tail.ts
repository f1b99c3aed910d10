/**
 * GET /events/stream: accepted events live, over server-sent events (shared/sseHub.ts), for
 * `events tail`; each event's SSE id is its id. A reader that can't keep up is cut off, never the
 * service's memory: it reconnects with Last-Event-ID and gets what it missed while that is still
 * held, or is told how many it may have lost (`event: dropped`).
 */
import type { Request, Response } from 'express';
import { SseHub } from '../shared/sseHub.ts';
import { lineOf, type StoredEvent } from './event.ts';
import type { TopicFilter } from './topics.ts';

/** Bytes a slow reader may leave unread before it is cut off. */
const MAX_UNSENT_BYTES = 1024 * 1024;
/** Recent events held for readers that reconnect. */
const REPLAY_BYTES = 2 * 1024 * 1024;
const PING_MS = 15_000;

interface TailFilter {
  topics?: TopicFilter;
}

export class EventTail {
  private readonly hub: SseHub<TailFilter>;

  constructor(maxReaders: number) {
    this.hub = new SseHub<TailFilter>({
      maxClients: maxReaders,
      maxQueuedBytes: MAX_UNSENT_BYTES,
      replayBytes: REPLAY_BYTES,
      heartbeatMs: PING_MS,
      retryMs: 2000,
      filterKey: (filter) => filter.topics?.patterns.join(',') ?? '>',
      greet: ({ missed }) => (missed ? [{ event: 'dropped', data: JSON.stringify({ dropped: missed }) }] : []),
    });
  }

  get size(): number {
    return this.hub.size;
  }

  open(req: Request, res: Response, topics?: TopicFilter): void {
    this.hub.open(req, res, { topics });
  }

  publish(events: StoredEvent[]): void {
    this.hub.publish(events.map((event) => ({ id: event.id, data: () => lineOf(event), match: (filter: TailFilter) => !filter.topics || filter.topics.matches(event.topic) })));
  }

  close(): void {
    this.hub.close();
  }
}
