import { eventSize, type StoredEvent } from './event.ts';

export interface QueueBounds {
  maxEvents: number;
  maxBytes: number;
}

/**
 * One subscriber's events, oldest first, bounded by count and bytes. Past a bound the oldest are
 * dropped: a subscriber that fell that far behind wants the news, and is told how much it missed.
 */
export class EventQueue {
  private items: StoredEvent[] = [];
  private head = 0;
  private bytes = 0;
  /** Dropped since the last delivery that told the subscriber (its gap notice). */
  unreported = 0;
  droppedTotal = 0;

  constructor(private readonly bounds: QueueBounds) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** The oldest event, or undefined. */
  first(): StoredEvent | undefined {
    return this.items[this.head];
  }

  /** Adds an event at the end; returns how many old ones it pushed out. */
  push(event: StoredEvent): number {
    this.items.push(event);
    this.bytes += eventSize(event);
    let dropped = 0;
    while (this.length > 1 && (this.length > this.bounds.maxEvents || this.bytes > this.bounds.maxBytes)) {
      this.shiftOne();
      dropped++;
    }
    this.noteDropped(dropped);
    return dropped;
  }

  /** Takes out up to maxEvents oldest events whose delivery lines fit in maxBytes (always at least one). */
  take(maxEvents: number, maxBytes: number, lineBytes: (event: StoredEvent) => number): StoredEvent[] {
    const out: StoredEvent[] = [];
    let bytes = 0;
    while (this.length > 0 && out.length < maxEvents) {
      const size = lineBytes(this.items[this.head]);
      if (out.length > 0 && bytes + size > maxBytes) break;
      out.push(this.items[this.head]);
      bytes += size;
      this.shiftOne();
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** Drops the oldest events accepted before `cutoff` (epoch ms); returns how many. */
  expire(cutoff: number): number {
    let dropped = 0;
    while (this.length > 0 && this.items[this.head].time < cutoff) {
      this.shiftOne();
      dropped++;
    }
    this.noteDropped(dropped);
    return dropped;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }

  private shiftOne(): void {
    const event = this.items[this.head];
    this.items[this.head] = undefined as unknown as StoredEvent;
    this.head++;
    this.bytes -= eventSize(event);
  }

  noteDropped(n: number): void {
    this.unreported += n;
    this.droppedTotal += n;
  }
}
