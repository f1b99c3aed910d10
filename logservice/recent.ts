/**
 * The in-memory index of the most recent entries (a ring, bounded by count and by bytes), so
 * the common queries never touch the files. It keeps each entry's JSON line, not the parsed
 * object, and a line as its place in the bytes of the batch it was written with: one buffer per
 * batch, outside V8's heap, instead of a string per line, which every young-generation collection
 * would copy until promoted (the cost that bounded intake under load). A batch's bytes stay while
 * any of its lines is held: beyond the bounds, at most the bytes of the oldest batch held.
 */
import { matches, mayMatchLine, type LogFilter } from './filters.ts';
import type { LogEntry } from './protocol.ts';

export class RecentIndex {
  /** The batch bytes each slot's line is in, and where: [starts, ends). */
  private readonly texts: (Buffer | undefined)[];
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;
  private readonly seqs: Float64Array;
  private head = 0; // next slot to write
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {
    const slots = Math.max(1, maxEntries);
    this.texts = new Array(slots);
    this.starts = new Int32Array(slots);
    this.ends = new Int32Array(slots);
    this.seqs = new Float64Array(slots);
  }

  get size(): number {
    return this.count;
  }

  get byteSize(): number {
    return this.bytes;
  }

  private slot(age: number): number {
    return (this.head - age + this.texts.length) % this.texts.length;
  }

  /** The seq of the oldest entry held (entries before it live only in the files). */
  oldestSeq(): number | undefined {
    return this.count === 0 ? undefined : this.seqs[this.slot(this.count)];
  }

  /** Adds the line in bytes[start, end), numbered seq. */
  add(seq: number, text: Buffer, start = 0, end = text.length): void {
    if (this.maxEntries === 0) return;
    if (this.count === this.texts.length) this.evictOldest();
    this.texts[this.head] = text;
    this.starts[this.head] = start;
    this.ends[this.head] = end;
    this.seqs[this.head] = seq;
    this.head = (this.head + 1) % this.texts.length;
    this.count++;
    this.bytes += end - start;
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
    this.bytes -= this.ends[slot] - this.starts[slot];
    this.texts[slot] = undefined;
    this.count--;
  }

  private line(slot: number): string {
    return this.texts[slot]!.toString('utf8', this.starts[slot], this.ends[slot]);
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
      const line = this.line(this.slot(age));
      if (!mayMatchLine(filter, line)) continue;
      const entry = JSON.parse(line) as LogEntry;
      if (matches(filter, entry) && !visit(entry)) return false;
    }
    return true;
  }
}
