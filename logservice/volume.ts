/**
 * Log volume over time (GET /logs/volume): matching lines counted per time bucket and level, as
 * Grafana draws above its log lines. Buckets have a round width (1 s, 5 s, 1 m, 1 h …) aligned to it.
 */
import { LEVELS, type LogVolume, type VolumeBucket } from './protocol.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEPS = [
  1, 10, 100, SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 7 * DAY, 30 * DAY, 365 * DAY,
];

/** The smallest round width that covers the span in at most `buckets` buckets. */
export function stepFor(spanMs: number, buckets: number): number {
  const least = spanMs / buckets;
  return STEPS.find((step) => step >= least) ?? Math.ceil(least / (365 * DAY)) * 365 * DAY;
}

/**
 * Counts lines (their times and level ranks) into buckets over [from, to]: from defaults to the
 * earliest line, to to the later of now and the latest line. Lines outside the range are not counted.
 */
export function countVolume(
  times: readonly number[],
  ranks: readonly number[],
  range: { fromMs?: number; toMs?: number; buckets: number; now?: number },
): Omit<LogVolume, 'truncated'> {
  let earliest = Infinity;
  let latest = -Infinity;
  for (const t of times) {
    if (t < earliest) earliest = t;
    if (t > latest) latest = t;
  }
  const now = range.now ?? Date.now();
  const toMs = range.toMs ?? Math.max(now, latest);
  const fromMs = Math.min(range.fromMs ?? (Number.isFinite(earliest) ? earliest : toMs), toMs);
  const stepMs = stepFor(Math.max(1, toMs - fromMs + 1), range.buckets);
  const start = Math.floor(fromMs / stepMs) * stepMs;
  const count = Math.floor((toMs - start) / stepMs) + 1;
  const buckets: VolumeBucket[] = Array.from({ length: count }, (_, i) => ({ time: new Date(start + i * stepMs).toISOString(), count: 0, levels: {} }));
  let total = 0;
  for (let i = 0; i < times.length; i++) {
    const t = times[i];
    if (!(t >= fromMs && t <= toMs)) continue;
    const bucket = buckets[Math.floor((t - start) / stepMs)];
    const level = LEVELS[ranks[i]] ?? 'info';
    bucket.count++;
    bucket.levels[level] = (bucket.levels[level] ?? 0) + 1;
    total++;
  }
  return { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), stepMs, buckets, total };
}
