/** The chaos run's two ways to ask: a JSON GET with a timeout, and a poll with a deadline that never throws. */
import { setTimeout as sleep } from 'node:timers/promises';

export async function getJson<T = any>(url: string, timeoutMs = 3000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return (await res.json()) as T;
}

/** Polls until fn returns a truthy value, or gives up at the time given (undefined). */
export async function until<T>(fn: () => Promise<T> | T, by: number, intervalMs = 200): Promise<T | undefined> {
  while (Date.now() < by) {
    try {
      const value = await fn();
      if (value) return value;
    } catch {
      // not yet
    }
    await sleep(intervalMs);
  }
  return undefined;
}
