/**
 * Turns a POST /log body into log entries: the reference Go client's plain text
 * (`[ServiceName] - message`), one JSON entry or an array of them, or NDJSON. A bad line is
 * reported by its position and never takes its good neighbours down with it.
 */
import { canonicalKeys } from '../shared/validate.ts';
import { ENTRY_FIELDS, SENT_FIELDS, type LogEntry, type RejectedLine } from './protocol.ts';

export interface ParsedLines {
  /** Entries whose service may still be empty: the server fills it from the caller. */
  entries: LogEntry[];
  rejected: RejectedLine[];
  /** How many lines the body held (good and bad). */
  total: number;
}

const LEVEL = /^[A-Za-z]{1,16}$/;
const MAX_FIELD = 128;
/** The reference Go client's prefix: log.SetPrefix("[" + service + "] - "). */
const GO_PREFIX = /^\[([^\]\r\n]{1,128})\] - /;

/** Fields the entry itself owns (a sender's `timestamp` among them); every other key is metadata. */
const OWN_FIELDS: ReadonlySet<string> = new Set([...SENT_FIELDS, ...ENTRY_FIELDS]);
/** Already in the form we store (what our clients send): no need to parse and print the date. */
const CANONICAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Validates one JSON entry; returns the entry or why it was refused. */
export function normalizeEntry(raw: unknown, receivedAt: string): LogEntry | string {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'must be a JSON object';
  let input = raw as Record<string, unknown>;
  // Go-style PascalCase names (Message, Level) decode like ours; the common case skips the renaming.
  if (typeof input.message !== 'string') input = canonicalKeys(input, SENT_FIELDS) as Record<string, unknown>;
  const { message, level, service, requestId } = input;

  if (message === undefined) return 'message: is required';
  if (typeof message !== 'string') return 'message: must be a string';

  let levelName = 'info';
  if (level !== undefined && level !== null) {
    if (typeof level !== 'string' || !LEVEL.test(level)) return 'level: must be a word of 1-16 letters';
    levelName = level.toLowerCase();
  }

  let isoTime = receivedAt;
  const givenTime = input.time ?? input.timestamp;
  if (typeof givenTime === 'string' && CANONICAL_TIME.test(givenTime)) {
    isoTime = givenTime;
  } else if (givenTime !== undefined && givenTime !== null) {
    const ms = typeof givenTime === 'number' ? givenTime : typeof givenTime === 'string' ? Date.parse(givenTime) : NaN;
    if (!Number.isFinite(ms)) return 'time: must be an ISO 8601 date or epoch milliseconds';
    isoTime = new Date(ms).toISOString();
  }

  let serviceName = '';
  if (service !== undefined && service !== null && service !== '') {
    if (typeof service !== 'string' || service.length > MAX_FIELD) return `service: must be a string of at most ${MAX_FIELD} characters`;
    serviceName = service;
  }

  const entry: LogEntry = { time: isoTime, level: levelName, service: serviceName, message };
  if (requestId !== undefined && requestId !== null && requestId !== '') {
    if (typeof requestId !== 'string' || requestId.length > MAX_FIELD) return `requestId: must be a string of at most ${MAX_FIELD} characters`;
    entry.requestId = requestId;
  }
  for (const key in input) if (!OWN_FIELDS.has(key)) entry[key] = input[key];
  // In the entry's shape from the start (the store sets both): one shape change less per line, and its line is written faster.
  entry.receivedAt = receivedAt;
  entry.seq = -1;
  return entry;
}

function collect(values: readonly unknown[], receivedAt: string): ParsedLines {
  const parsed: ParsedLines = { entries: [], rejected: [], total: values.length };
  for (let i = 0; i < values.length; i++) {
    const entry = normalizeEntry(values[i], receivedAt);
    if (typeof entry === 'string') parsed.rejected.push({ line: i + 1, reason: entry });
    else parsed.entries.push(entry);
  }
  return parsed;
}

/** An already-decoded JSON body: one entry or an array of entries (line n is element n). */
export function parseJsonBody(body: unknown, receivedAt: string): ParsedLines {
  return collect(Array.isArray(body) ? body : [body], receivedAt);
}

/** NDJSON: one JSON entry per line; blank lines are skipped but keep their numbers. */
export function parseNdjsonBody(text: string, receivedAt: string): ParsedLines {
  const parsed: ParsedLines = { entries: [], rejected: [], total: 0 };
  let start = 0;
  let line = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const raw = text.slice(start, end).trim();
    start = end + 1;
    if (raw === '') continue;
    parsed.total++;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      parsed.rejected.push({ line, reason: `not valid JSON (${(err as Error).message})` });
      continue;
    }
    const entry = normalizeEntry(value, receivedAt);
    if (typeof entry === 'string') parsed.rejected.push({ line, reason: entry });
    else parsed.entries.push(entry);
  }
  return parsed;
}

/**
 * The reference Go format: the whole body is one message, `[ServiceName] - message`, usually
 * ending in a newline. Without the prefix, the message is the body and the service is the caller.
 */
export function parseTextBody(text: string, receivedAt: string): ParsedLines {
  const body = text.replace(/\r?\n$/, '');
  const match = GO_PREFIX.exec(body);
  const service = match ? match[1].trim() : '';
  const message = match ? body.slice(match[0].length) : body;
  if (message.trim() === '') return { entries: [], rejected: [{ line: 1, reason: 'the message is empty' }], total: 1 };
  return { entries: [{ time: receivedAt, level: 'info', service, message }], rejected: [], total: 1 };
}
