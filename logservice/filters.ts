/**
 * The filters of GET /logs, GET /logs/volume and GET /logs/stream (service, level, requestId, q, since,
 * until), parsed from the query string once and matched against entries.
 */
import { z } from 'zod';
import { parseWith } from '../shared/validate.ts';
import { ENTRY_FIELDS, LEVELS, type LogEntry } from './protocol.ts';

export interface LogFilter {
  services?: Set<string>;
  /** The least severe level let through (a rank in LEVELS: 0 is error). */
  maxRank?: number;
  /** A request id, or the start of one (see requestIdExact). */
  requestId?: string;
  /** True once the id is known to be whole: then only that id matches, not the ids it starts. */
  requestIdExact?: boolean;
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
  const ms = duration ? now - Number(duration[1]) * UNIT_MS[duration[2]] : /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  // Beyond what a Date holds (±8.64e15 ms) no line can be, and no bucket could be named.
  return Number.isFinite(new Date(ms).getTime()) ? ms : undefined;
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

const RANK: ReadonlyMap<string, number> = new Map(LEVELS.map((level, rank) => [level, rank]));
/** Levels other loggers write, and the one of ours each ranks with; any other word a line carries ranks as info. */
export const LEVEL_ALIASES: Readonly<Record<string, (typeof LEVELS)[number]>> = {
  fatal: 'error', critical: 'error', crit: 'error', alert: 'error', emerg: 'error', emergency: 'error', err: 'error',
  warning: 'warn', notice: 'info', trace: 'silly',
};
const INFO_RANK = RANK.get('info')!;

/** An entry's level as a rank in LEVELS (0 is error, the most severe). */
export function levelRank(level: string): number {
  return RANK.get(level) ?? RANK.get(LEVEL_ALIASES[level]) ?? INFO_RANK;
}

/** `level` is a minimum ("warn" means warn and error); a list lets through the least severe of them. */
const minimumLevel = list.transform((levels, ctx) => {
  let max = -1;
  for (const level of levels) {
    const rank = RANK.get(level.toLowerCase());
    if (rank === undefined) {
      ctx.addIssue({ code: 'custom', message: `unknown level "${level.slice(0, 32)}": the levels are ${LEVELS.join(', ')} (a minimum: warn means warn and error)` });
      return z.NEVER;
    }
    max = Math.max(max, rank);
  }
  return max < 0 ? undefined : max;
});

const filterQuery = z.object({
  service: list.optional(),
  level: minimumLevel.optional(),
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
  if (parsed.level !== undefined) filter.maxRank = parsed.level;
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
  if (filter.maxRank !== undefined && levelRank(entry.level) > filter.maxRank) return false;
  if (filter.requestId !== undefined && !requestIdMatches(filter, entry.requestId)) return false;
  if (filter.sinceMs !== undefined || filter.untilMs !== undefined) {
    const ms = Date.parse(entry.time);
    if (filter.sinceMs !== undefined && !(ms >= filter.sinceMs)) return false;
    if (filter.untilMs !== undefined && !(ms <= filter.untilMs)) return false;
  }
  if (filter.text !== undefined && !containsText(entry, filter.text)) return false;
  return true;
}

function requestIdMatches(filter: LogFilter, requestId: unknown): boolean {
  if (typeof requestId !== 'string') return false;
  return filter.requestIdExact ? requestId === filter.requestId : requestId.startsWith(filter.requestId!);
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
