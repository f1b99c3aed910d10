/** An instance's state history: its transitions, bounded, kept in its record (and so saved with it). */
import type { Transition } from './protocol.ts';

/** Enough for an operator's look at a flapping instance; a record carries at most this many. */
export const HISTORY_LIMIT = 32;

export type HistoryEntry = Transition<number>;

export function appendTransition(history: HistoryEntry[] | undefined, entry: HistoryEntry): HistoryEntry[] {
  const next = history ? [...history, entry] : [entry];
  return next.length > HISTORY_LIMIT ? next.slice(next.length - HISTORY_LIMIT) : next;
}

export function transitionView(entry: HistoryEntry): Transition<string> {
  return { ...entry, at: new Date(entry.at).toISOString() };
}
