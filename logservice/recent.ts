/**
 * The in-memory index of the most recent entries (a ring, bounded by count and by bytes), so
 * the common queries never touch the files.
 */
import { matches, type LogFilter } from './filters.ts';
import type { LogEntry } from './protocol.ts';

export class RecentIndex {
  private readonly ring: (LogEntry | undefined)[];
  private readonly sizes: Uint32Array;
  private head = 0; // next slot to write
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {
    this.ring = new Array(Math.max(1, maxEntries));
    this.sizes = new Uint32Array(Math.max(1, maxEntries));
  }

  get size(): number {
    return this.count;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** The seq of the oldest entry held (entries before it live only in the files). */
  oldestSeq(): number | undefined {
    if (this.count === 0) return undefined;
    return this.ring[(this.head - this.count + this.ring.length) % this.ring.length]?.seq;
  }

  add(entry: LogEntry, bytes: number): void {
    if (this.maxEntries === 0) return;
    if (this.count === this.ring.length) this.evictOldest();
    this.ring[this.head] = entry;
    this.sizes[this.head] = bytes;
    this.head = (this.head + 1) % this.ring.length;
    this.count++;
    this.bytes += bytes;
    while (this.bytes > this.maxBytes && this.count > 1) this.evictOldest();
  }

  private evictOldest(): void {
    const slot = (this.head - this.count + this.ring.length) % this.ring.length;
    this.bytes -= this.sizes[slot];
    this.ring[slot] = undefined;
    this.count--;
  }

  /** Matching entries, newest first, at most limit. */
  query(filter: LogFilter, limit: number): LogEntry[] {
    const found: LogEntry[] = [];
    for (let i = 1; i <= this.count && found.length < limit; i++) {
      const entry = this.ring[(this.head - i + this.ring.length) % this.ring.length]!;
      if (matches(filter, entry)) found.push(entry);
    }
    return found;
  }

  /** The newest entry's seq, to continue numbering. */
  newestSeq(): number | undefined {
    if (this.count === 0) return undefined;
    return this.ring[(this.head - 1 + this.ring.length) % this.ring.length]?.seq;
  }
}
