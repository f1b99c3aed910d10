/**
 * The in-memory index of the most recent entries (a ring, bounded by count and by bytes), so
 * the common queries never touch the files. It keeps each entry's JSON line, not the parsed
 * object: one string per line is half the memory, and the garbage it leaves behind is smaller.
 */
import { matches, mayMatchLine, type LogFilter } from './filters.ts';
import type { LogEntry } from './protocol.ts';

export class RecentIndex {
  private readonly lines: (string | undefined)[];
  private readonly seqs: Float64Array;
  private head = 0; // next slot to write
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {
    this.lines = new Array(Math.max(1, maxEntries));
    this.seqs = new Float64Array(Math.max(1, maxEntries));
  }

  get size(): number {
    return this.count;
  }

  get byteSize(): number {
    return this.bytes;
  }

  private slot(age: number): number {
    return (this.head - age + this.lines.length) % this.lines.length;
  }

  /** The seq of the oldest entry held (entries before it live only in the files). */
  oldestSeq(): number | undefined {
    return this.count === 0 ? undefined : this.seqs[this.slot(this.count)];
  }

  add(seq: number, line: string): void {
    if (this.maxEntries === 0) return;
    if (this.count === this.lines.length) this.evictOldest();
    this.lines[this.head] = line;
    this.seqs[this.head] = seq;
    this.head = (this.head + 1) % this.lines.length;
    this.count++;
    this.bytes += line.length;
    while (this.bytes > this.maxBytes && this.count > 1) this.evictOldest();
  }

  /** Forgets the entries numbered below `seq` (their file was removed by retention); how many went. */
  dropBefore(seq: number): number {
    let dropped = 0;
    for (; this.count > 0 && this.seqs[this.slot(this.count)] < seq; dropped++) this.evictOldest();
    return dropped;
  }

  private evictOldest(): void {
    const slot = this.slot(this.count);
    this.bytes -= this.lines[slot]!.length;
    this.lines[slot] = undefined;
    this.count--;
  }

  /** Matching entries, newest first, at most limit. */
  query(filter: LogFilter, limit: number): LogEntry[] {
    const found: LogEntry[] = [];
    if (limit > 0) this.each(filter, (entry) => found.push(entry) < limit);
    return found;
  }

  /** Hands matching entries to visit, newest first, until it returns false; says whether it ran to the end. */
  each(filter: LogFilter, visit: (entry: LogEntry) => boolean): boolean {
    for (let age = 1; age <= this.count; age++) {
      const line = this.lines[this.slot(age)]!;
      if (!mayMatchLine(filter, line)) continue;
      const entry = JSON.parse(line) as LogEntry;
      if (matches(filter, entry) && !visit(entry)) return false;
    }
    return true;
  }
}
