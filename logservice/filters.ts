/**
 * The filters of GET /logs and GET /logs/stream (service, level, requestId, q, since, until),
 * parsed from the query string once and matched against entries.
 */
import { z } from 'zod';
import { parseWith } from '../shared/validate.ts';
import { ENTRY_FIELDS, type LogEntry } from './protocol.ts';

export interface LogFilter {
  services?: Set<string>;
  levels?: Set<string>;
  requestId?: string;
  /** Lower-cased text that the message or a metadata value must contain. */
  text?: string;
  sinceMs?: number;
  untilMs?: number;
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An ISO date, epoch milliseconds, or a duration before now ("15m", "2h", "7d"). */
export function parseInstant(value: string, now = Date.now()): number | undefined {
  const duration = DURATION.exec(value);
  if (duration) return now - Number(duration[1]) * UNIT_MS[duration[2]];
  if (/^\d+$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean))
  .refine((v) => v.length <= 64, 'at most 64 values');
const instant = z
  .string()
  .max(64)
  .transform((v, ctx) => {
    const ms = parseInstant(v.trim());
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date, epoch milliseconds or a duration such as 15m, 2h or 7d' });
      return z.NEVER;
    }
    return ms;
  });

const filterQuery = z.object({
  service: list.optional(),
  level: list.optional(),
  requestId: z.string().max(128).optional(),
  q: z.string().max(256).optional(),
  since: instant.optional(),
  until: instant.optional(),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
});

export const DEFAULT_LIMIT = 200;

/** Reads the filters (and limit) from a query string, or throws a 400 naming the parameter. */
export function parseFilter(query: unknown): { filter: LogFilter; limit: number } {
  const parsed = parseWith(filterQuery, query, 'invalid_query');
  const filter: LogFilter = {};
  if (parsed.service?.length) filter.services = new Set(parsed.service);
  if (parsed.level?.length) filter.levels = new Set(parsed.level.map((l) => l.toLowerCase()));
  if (parsed.requestId) filter.requestId = parsed.requestId;
  if (parsed.q) filter.text = parsed.q.toLowerCase();
  if (parsed.since !== undefined) filter.sinceMs = parsed.since;
  if (parsed.until !== undefined) filter.untilMs = parsed.until;
  return { filter, limit: parsed.limit ?? DEFAULT_LIMIT };
}

/** A text search reads the message, then the metadata: not the entry's other own fields. */
const OWN_FIELDS: ReadonlySet<string> = new Set(ENTRY_FIELDS);

function containsText(entry: LogEntry, text: string): boolean {
  if (entry.message.toLowerCase().includes(text)) return true;
  for (const key in entry) {
    if (OWN_FIELDS.has(key)) continue;
    const value = entry[key];
    const asText = typeof value === 'string' ? value : JSON.stringify(value);
    if (asText?.toLowerCase().includes(text)) return true;
  }
  return false;
}

export function matches(filter: LogFilter, entry: LogEntry): boolean {
  if (filter.services && !filter.services.has(entry.service)) return false;
  if (filter.levels && !filter.levels.has(entry.level)) return false;
  if (filter.requestId !== undefined && entry.requestId !== filter.requestId) return false;
  if (filter.sinceMs !== undefined || filter.untilMs !== undefined) {
    const ms = Date.parse(entry.time);
    if (filter.sinceMs !== undefined && !(ms >= filter.sinceMs)) return false;
    if (filter.untilMs !== undefined && !(ms <= filter.untilMs)) return false;
  }
  if (filter.text !== undefined && !containsText(entry, filter.text)) return false;
  return true;
}

/** A cheap test on a stored JSON line before parsing it: false means it cannot match. */
export function mayMatchLine(filter: LogFilter, line: string): boolean {
  if (filter.requestId !== undefined && !line.includes(filter.requestId)) return false;
  if (filter.text !== undefined && !line.toLowerCase().includes(filter.text)) {
    // JSON escapes (\n, \", \u00e9) can hide a match in the raw line: only skip plain ASCII lines.
    if (!line.includes('\\')) return false;
  }
  return true;
}
