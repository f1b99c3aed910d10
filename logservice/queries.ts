/**
 * The read side of the log service, as a Loki user expects it: lines in time order (newest last), a
 * request id's start standing for the one request it names, the services a query names that have no
 * lines, and the volume of matching lines over time.
 */
import { HttpError } from '../shared/errors.ts';
import { levelRank, type LogFilter } from './filters.ts';
import type { LabelIndex } from './labels.ts';
import type { LogStore } from './store.ts';
import { countVolume } from './volume.ts';
import type { LogEntry, LogQueryResult, LogVolume } from './protocol.ts';

/** How many lines a tail's opening (or a volume) looks at to learn which request a prefix names. */
const RESOLVE_LINES = 1000;

/** Oldest first; lines of one instant in the order they arrived. */
export function byTime(a: LogEntry, b: LogEntry): number {
  return Date.parse(a.time) - Date.parse(b.time) || (a.seq ?? 0) - (b.seq ?? 0);
}

function requestIds(entries: LogEntry[]): Set<string> {
  return new Set(entries.map((e) => e.requestId).filter((id): id is string => typeof id === 'string'));
}

function ambiguous(prefix: string, ids: Set<string>): HttpError {
  const shown = [...ids].sort().slice(0, 5).join(', ');
  const more = ids.size > 5 ? ` and ${ids.size - 5} more` : '';
  return new HttpError(400, 'ambiguous_request_id', `requestId: "${prefix}" is the start of ${ids.size} request ids (${shown}${more}); give more of it`);
}

/**
 * What a request id in a filter names, judged from the lines it matched: itself when some line carries
 * it whole; else the one id those lines carry; several ids are a 400. undefined: the filter stands.
 */
function resolved(filter: LogFilter, found: LogEntry[]): LogFilter | undefined {
  if (filter.requestId === undefined || filter.requestIdExact) return undefined;
  const ids = requestIds(found);
  if (ids.has(filter.requestId)) return { ...filter, requestIdExact: true };
  if (ids.size > 1) throw ambiguous(filter.requestId, ids);
  return ids.size === 1 ? { ...filter, requestId: [...ids][0], requestIdExact: true } : undefined;
}

export class LogQueries {
  constructor(
    private readonly store: LogStore,
    private readonly labels: LabelIndex,
  ) {}

  /** The newest `limit` matching lines (by arrival), in time order: the newest last. */
  async search(filter: LogFilter, limit: number): Promise<LogQueryResult> {
    let result = await this.store.query(filter, limit);
    const exact = resolved(filter, result.entries);
    // A whole id that is also the start of longer ones: only its own lines, which the first search may have crowded out.
    if (exact && requestIds(result.entries).size > 1) result = await this.store.query(exact, limit);
    const entries = result.entries.sort(byTime);
    this.labels.note(entries);
    const answer: LogQueryResult = { entries, truncated: result.truncated };
    if (filter.services) {
      const found = new Set(entries.map((e) => e.service));
      const unknown = await this.labels.unknown([...filter.services].filter((name) => !found.has(name)));
      if (unknown.length) answer.unknownServices = unknown;
    }
    return answer;
  }

  /** The filter with its request id prefix made the whole id it names among the stored lines (for a tail, a volume). */
  async resolveRequestId(filter: LogFilter): Promise<LogFilter> {
    if (filter.requestId === undefined || filter.requestIdExact) return filter;
    return resolved(filter, (await this.store.query(filter, RESOLVE_LINES)).entries) ?? filter;
  }

  /** Matching lines counted per time bucket and level, over the filter's since and until. */
  async volume(filter: LogFilter, buckets: number): Promise<LogVolume> {
    filter = await this.resolveRequestId(filter);
    const times: number[] = [];
    const ranks: number[] = [];
    const { truncated } = await this.store.scan(filter, (entry) => {
      times.push(Date.parse(entry.time));
      ranks.push(levelRank(entry.level));
      return true;
    });
    return { ...countVolume(times, ranks, { fromMs: filter.sinceMs, toMs: filter.untilMs, buckets }), truncated };
  }
}
