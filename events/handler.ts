/**
 * The receiving end, for a service to mount: POST /event with a handler per topic pattern, and the
 * registry metadata that subscribes it. Deliveries from one queue arrive one at a time and in order;
 * a handler that throws gets a 500, so the events service delivers again from that event on, and
 * what was already handled is skipped by id.
 */
import express, { type Request, type Router } from 'express';
import type { Logger } from 'winston';
import { limitBody } from '../shared/bodyLimit.ts';
import { HttpError } from '../shared/errors.ts';
import { topicMatches, patternProblem } from './topics.ts';
import {
  DEFAULT_EVENT_PATH,
  DROPPED_HEADER,
  EVENT_ID_HEADER,
  EVENT_SEQ_HEADER,
  EVENT_TOPIC_HEADER,
  JOURNAL_HEADER,
  MESSAGE_TOPIC,
  METADATA_BALANCED,
  METADATA_BROADCAST,
  METADATA_PATH,
  NDJSON,
  SUBSCRIPTION_HEADER,
  type EventEnvelope,
} from './protocol.ts';

export type EventHandler = (event: EventEnvelope) => void | Promise<void>;

export interface EventSubscriberOptions {
  /** Every instance of the service gets these (pattern -> handler). */
  broadcast?: Record<string, EventHandler>;
  /** One instance of the service gets each of these, round-robin with failover. */
  balanced?: Record<string, EventHandler>;
  path?: string;
  logger?: Logger;
  /** Told when the events service dropped events for this subscription (queue bound or retention). */
  onGap?: (dropped: number, subscription: string) => void;
  /** Largest delivery accepted (default 4 MiB; the events service sends at most EVENTS_BATCH_BYTES, or one event). */
  bodyLimit?: number;
}

/** Registry metadata that subscribes a service to these patterns (spread it into startService's metadata). */
export function subscriptionMetadata(options: { broadcast?: string[]; balanced?: string[]; path?: string }): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pattern of [...(options.broadcast ?? []), ...(options.balanced ?? [])]) {
    const problem = patternProblem(pattern);
    if (problem) throw new Error(`topic pattern "${pattern}" ${problem}`);
  }
  if (options.broadcast?.length) metadata[METADATA_BROADCAST] = options.broadcast.join(',');
  if (options.balanced?.length) metadata[METADATA_BALANCED] = options.balanced.join(',');
  if (options.path && options.path !== DEFAULT_EVENT_PATH) metadata[METADATA_PATH] = options.path;
  return metadata;
}

/** The last id handled per queue of the events service (and per journal: a new journal counts from 1 again). */
class Progress {
  private readonly lastId = new Map<string, { journal: string; id: number }>();

  handled(subscription: string, journal: string, id: number): boolean {
    const seen = this.lastId.get(subscription);
    return seen !== undefined && seen.journal === journal && id <= seen.id;
  }

  note(subscription: string, journal: string, id: number): void {
    this.lastId.set(subscription, { journal, id });
  }
}

/** The parts of a service's event endpoint: its metadata (for registration) and its router. */
export function eventSubscriber(options: EventSubscriberOptions): { metadata: Record<string, string>; router: Router; path: string } {
  const path = options.path ?? DEFAULT_EVENT_PATH;
  const broadcast = Object.entries(options.broadcast ?? {});
  const balanced = Object.entries(options.balanced ?? {});
  const metadata = subscriptionMetadata({ broadcast: broadcast.map(([p]) => p), balanced: balanced.map(([p]) => p), path });
  const progress = new Progress();
  const limit = options.bodyLimit ?? 4 * 1024 * 1024;
  const router = express.Router();

  const handlersFor = (subscription: string, topic: string): EventHandler[] => {
    // A balanced queue's events go to the balanced handlers, a broadcast queue's to the broadcast ones.
    const pool = subscription.startsWith('group:') ? balanced : subscription.startsWith('instance:') ? broadcast : [...broadcast, ...balanced];
    return pool.filter(([pattern]) => topicMatches(pattern, topic)).map(([, handler]) => handler);
  };

  router.post(path, limitBody(express.text({ type: NDJSON, limit }), limit, [NDJSON]), async (req, res) => {
    const subscription = req.get(SUBSCRIPTION_HEADER) ?? 'unknown';
    const journal = req.get(JOURNAL_HEADER) ?? '';
    const dropped = Number(req.get(DROPPED_HEADER) ?? 0);
    if (dropped > 0) {
      options.logger?.warn(`the events service dropped ${dropped} event(s) for ${subscription} (it fell behind or was away too long)`);
      options.onGap?.(dropped, subscription);
    }
    const events = req.is(NDJSON) ? parseLines(typeof req.body === 'string' ? req.body : '') : [single(req)];
    let handled = 0;
    for (const event of events) {
      if (progress.handled(subscription, journal, event.id)) continue;
      for (const handler of handlersFor(subscription, event.topic)) await handler(event);
      progress.note(subscription, journal, event.id);
      handled++;
    }
    res.json({ ok: true, handled });
  });
  router.all(path, (req, _res, next) => next(new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}; use POST`, { Allow: 'POST' })));
  return { metadata, router, path };
}

function parseLines(text: string): EventEnvelope[] {
  const events: EventEnvelope[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let event: EventEnvelope;
    try {
      event = JSON.parse(line) as EventEnvelope;
    } catch {
      throw new HttpError(400, 'malformed_event', 'a delivery line is not JSON');
    }
    if (typeof event?.id !== 'number' || typeof event.topic !== 'string') throw new HttpError(400, 'malformed_event', 'a delivery line lacks id or topic');
    events.push(event);
  }
  return events;
}

/** A delivery in the reference shape (the body as published, the event's identity in headers). */
function single(req: Request): EventEnvelope {
  const body: unknown = req.body;
  return {
    id: Number(req.get(EVENT_ID_HEADER) ?? 0),
    topic: req.get(EVENT_TOPIC_HEADER) ?? MESSAGE_TOPIC,
    seq: Number(req.get(EVENT_SEQ_HEADER) ?? 0),
    time: new Date().toISOString(),
    payload: Buffer.isBuffer(body) ? body.toString('base64') : body,
    contentType: req.get('content-type'),
  };
}
