import type { EventEnvelope } from './protocol.ts';

/** An accepted event as the events service holds it: shared by every queue it waits in. */
export interface StoredEvent {
  id: number;
  topic: string;
  seq: number;
  /** Accepted at (epoch ms). */
  time: number;
  contentType: string;
  /** The body as published: JSON text for POST /publish, the bytes as sent for POST /sendMessage. */
  payload: Buffer;
  /** Its delivery line, made once on first use (most events go to several subscribers). */
  line?: string;
}

/** Bookkeeping per held event beyond its payload (object, line, queue slots), for the byte bounds. */
const OVERHEAD_BYTES = 200;

export function eventSize(event: StoredEvent): number {
  return event.payload.length * 2 + event.topic.length + OVERHEAD_BYTES;
}

export const isJsonType = (contentType: string): boolean => /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType);
const isTextType = (contentType: string): boolean => /^text\//i.test(contentType);

/** The event as a platform subscriber gets it: the payload as JSON when it is JSON, else its text or base64. */
export function envelopeOf(event: StoredEvent): EventEnvelope {
  const base = { id: event.id, topic: event.topic, seq: event.seq, time: new Date(event.time).toISOString() };
  if (isJsonType(event.contentType)) return { ...base, payload: event.payload.length ? JSON.parse(event.payload.toString('utf8')) : null };
  if (isTextType(event.contentType)) return { ...base, payload: event.payload.toString('utf8'), contentType: event.contentType };
  return { ...base, payload: event.payload.toString('base64'), contentType: event.contentType, encoding: 'base64' };
}

/** The delivery line of an event. JSON payloads are spliced in as text (they were checked when published). */
export function lineOf(event: StoredEvent): string {
  if (event.line !== undefined) return event.line;
  if (isJsonType(event.contentType) && event.payload.length > 0) {
    const head = `{"id":${event.id},"topic":${JSON.stringify(event.topic)},"seq":${event.seq},"time":"${new Date(event.time).toISOString()}","payload":`;
    event.line = `${head}${event.payload.toString('utf8')}}`;
  } else {
    event.line = JSON.stringify(envelopeOf(event));
  }
  return event.line;
}
