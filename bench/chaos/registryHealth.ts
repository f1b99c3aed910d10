/** The registry's own health during the chaos run: file descriptors, RSS and health checks, read at the start and end of each registry process. */
import fs from 'node:fs';
import { procStats } from '../report.ts';
import type { Platform } from './platform.ts';
import type { Check } from './checks.ts';
import type { Monitor } from './monitor.ts';
import { fmt, HEARTBEAT } from './settings.ts';

export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export interface RegistrySnapshot {
  at: number;
  fds: number;
  rssMB: number;
  checks: number;
  checksOver1s: number;
}

export interface RegistryHealth {
  first: { start?: RegistrySnapshot; end?: RegistrySnapshot };
  second: { start?: RegistrySnapshot; end?: RegistrySnapshot };
}

export async function registrySnapshot(p: Platform): Promise<RegistrySnapshot> {
  const text = await (await fetch(`${p.registry.url}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
  const read = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
  const count = read(/^registry_check_latency_seconds_count(?:\{[^}]*\})? (\d+)/m);
  const upTo1s = read(/^registry_check_latency_seconds_bucket\{(?:[^}]*,)?le="1"[^}]*\} (\d+)/m);
  return { at: Date.now(), fds: fdCount(p.registry.pid), rssMB: procStats(p.registry.pid).rssMB, checks: count, checksOver1s: count - upTo1s };
}

/** No leak (fds, RSS) and no stalled health check, in either registry process. */
export function registryChecks(health: RegistryHealth, monitor: Monitor): Check[] {
  const a = health.first;
  const b = health.second;
  const fdLeak = (x: typeof a) => (x.start && x.end ? x.end.fds - x.start.fds : 0);
  const over = (a.end?.checksOver1s ?? 0) + (b.end?.checksOver1s ?? 0);
  return [
    {
      name: 'registry: no file descriptor leak',
      ok: fdLeak(a) <= 16 && fdLeak(b) <= 16,
      detail: `first process ${a.start?.fds}→${a.end?.fds}; after its restart ${b.start?.fds}→${b.end?.fds} (at most +16 allowed: keep-alive sockets to new instances)`,
    },
    {
      name: 'registry: RSS flat',
      ok: (a.start && a.end ? a.end.rssMB - a.start.rssMB : 0) <= 40 && (b.start && b.end ? b.end.rssMB - b.start.rssMB : 0) <= 40,
      detail: `first process ${fmt(a.start?.rssMB)}→${fmt(a.end?.rssMB)} MB; after its restart ${fmt(b.start?.rssMB)}→${fmt(b.end?.rssMB)} MB (at most +40 MB allowed)`,
    },
    {
      name: `registry: no health check stalled past its timeout (${HEARTBEAT.HEARTBEAT_TIMEOUT_MS} ms)`,
      ok: over === 0 && monitor.maxCheckLatencyMs <= Number(HEARTBEAT.HEARTBEAT_TIMEOUT_MS) + 100,
      detail: `${(a.end?.checks ?? 0) + (b.end?.checks ?? 0)} checks, ${over} over 1 s in the latency histogram; the longest last-check latency seen in the listing ${fmt(monitor.maxCheckLatencyMs, 0)} ms; the slowest GET /services answer ${fmt(monitor.maxRegistryHealthMs, 0)} ms`,
    },
  ];
}
