/**
 * The batch ids the log service has stored recently, with the answer it gave, so a client that
 * retries a POST whose answer it never saw (a timeout, a dropped connection) is not stored twice.
 * With a journal, they outlive a restart (or a crash) of the log service too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CLIENT_ID } from '../shared/requestContext.ts';

/** A batch id is a client-given id like a request id, under the same rule. */
export const BATCH_ID = CLIENT_ID;

export class BatchMemory<Answer> {
  private readonly answers = new Map<string, { answer: Promise<Answer>; at: number }>();

  constructor(
    readonly maxBatches: number,
    readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.answers.size;
  }

  /** The answer given to this batch (still being worked out, perhaps), if it was seen lately. */
  get(id: string): Promise<Answer> | undefined {
    const seen = this.answers.get(id);
    if (!seen) return undefined;
    if (Date.now() - seen.at > this.ttlMs) {
      this.answers.delete(id);
      return undefined;
    }
    return seen.answer;
  }

  /** Remembers a batch before its work finishes, so a concurrent retry waits for the same answer. */
  remember(id: string, answer: Promise<Answer>): void {
    if (this.maxBatches === 0) return;
    const now = Date.now();
    this.answers.set(id, { answer, at: now });
    // A Map iterates in insertion order: the oldest come first.
    for (const [oldId, seen] of this.answers) {
      if (this.answers.size <= this.maxBatches && now - seen.at <= this.ttlMs) break;
      this.answers.delete(oldId);
    }
  }

  forget(id: string): void {
    this.answers.delete(id);
  }

  /** Puts back a batch read from the journal, with the time it was stored. */
  restore(id: string, answer: Answer, at: number): void {
    this.answers.set(id, { answer: Promise.resolve(answer), at });
  }
}

interface JournalLine<Answer> {
  id: string;
  at: number;
  answer: Answer;
}

/**
 * DATA_DIR/batches.jsonl: one line per stored batch, appended once the batch's lines are in the log
 * file and fsynced, and before the batch is answered (so a crash can lose the note of a stored batch
 * that was not yet answered, never claim an unstored one). Read back at start-up and rewritten with
 * only what is still remembered.
 */
export class BatchJournal<Answer> {
  private readonly file: string;
  private fd?: number;
  private appended = 0;

  constructor(
    dataDir: string,
    private readonly memory: BatchMemory<Answer>,
  ) {
    this.file = path.join(dataDir, 'batches.jsonl');
  }

  /** Restores the remembered batches and starts a fresh journal holding just those. */
  open(): number {
    const kept = this.read();
    for (const line of kept) this.memory.restore(line.id, line.answer, line.at);
    this.rewrite(kept);
    return kept.length;
  }

  /** Replaces the journal with these lines (atomically) and appends after them. */
  private rewrite(kept: JournalLine<Answer>[]): void {
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, kept.map((line) => `${JSON.stringify(line)}\n`).join(''));
    fs.renameSync(tmp, this.file);
    this.appended = kept.length;
    this.fd = fs.openSync(this.file, 'a');
  }

  private read(): JournalLine<Answer>[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const now = Date.now();
    const lines: JournalLine<Answer>[] = [];
    for (const raw of text.split('\n')) {
      try {
        const line = JSON.parse(raw) as JournalLine<Answer>;
        if (typeof line.id === 'string' && typeof line.at === 'number' && now - line.at <= this.memory.ttlMs) lines.push(line);
      } catch {
        // a torn last line (a crash mid-append), or an empty one
      }
    }
    return this.memory.maxBatches > 0 ? lines.slice(-this.memory.maxBatches) : [];
  }

  /**
   * Notes a stored batch. Past twice the memory's size of appends, the journal is rewritten with what is still remembered.
   * A synchronous write (a few hundred bytes, once per batch): the note is in the file, which outlives a crash of the
   * process, before the answer goes out; it is not fsynced, so a power cut may lose it and a retry be stored twice.
   */
  append(id: string, answer: Answer): void {
    if (this.fd === undefined || this.memory.maxBatches === 0) return;
    try {
      fs.writeSync(this.fd, `${JSON.stringify({ id, at: Date.now(), answer })}\n`);
      if (++this.appended > 2 * this.memory.maxBatches) this.compact();
    } catch {
      // the journal is an optimisation: without it, a retried batch may be stored twice
    }
  }

  private compact(): void {
    this.close();
    this.rewrite(this.read()); // the memory has these already
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
