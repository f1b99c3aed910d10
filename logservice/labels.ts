/**
 * The label values a reader can pick from (GET /logs/labels): the services that have lines, learnt from
 * every line stored and, on first use after a start, from the newest files (within a read budget), and
 * the levels. A query naming a service outside them is told so instead of answering a silent nothing.
 */
import { LEVELS, type LogEntry, type LogLabels } from './protocol.ts';
import { linesBackward, logFiles } from './history.ts';

/** More names than any platform has: beyond it a flood of made-up names can't grow memory. */
const MAX_SERVICES = 1000;
/** How much of the newest files the first use reads to learn the services of earlier runs. */
const SEED_BYTES = 16 * 1024 * 1024;

export class LabelIndex {
  private readonly services = new Set<string>();
  private seeding?: Promise<void>;
  private partial = false;

  constructor(private readonly dataDir: string) {}

  /** Notes the services of lines just stored (or found by a query). */
  note(entries: Iterable<LogEntry>): void {
    let last: string | undefined;
    // A batch is mostly one service's: a name like the one before it is known already.
    for (const entry of entries) if (entry.service !== last) this.add((last = entry.service));
  }

  /** The services seen and the levels, once the files of earlier runs have been read. */
  async labels(): Promise<LogLabels> {
    await this.seed();
    return { services: [...this.services].sort(), levels: [...LEVELS], partial: this.partial };
  }

  /** Of the names given, those no stored line carries (as far as this index knows). */
  async unknown(names: Iterable<string>): Promise<string[]> {
    await this.seed();
    return [...names].filter((name) => !this.services.has(name));
  }

  private add(service: string): void {
    if (this.services.size < MAX_SERVICES || this.services.has(service)) this.services.add(service);
  }

  private seed(): Promise<void> {
    // Lazy: a start doesn't pay for it, and a reader waits for it once.
    this.seeding ??= this.readFiles();
    return this.seeding;
  }

  private async readFiles(): Promise<void> {
    let budget = SEED_BYTES;
    for (const file of await logFiles(this.dataDir)) {
      for await (const line of linesBackward(file.path)) {
        budget -= line.length + 1;
        if (budget < 0) {
          this.partial = true;
          return;
        }
        try {
          const service = (JSON.parse(line) as LogEntry).service;
          if (typeof service === 'string') this.add(service);
        } catch {
          // a torn or half-written line names nothing
        }
      }
    }
  }
}
