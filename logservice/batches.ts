/**
 * The batch ids the log service has stored recently, with the answer it gave, so a client that
 * retries a POST whose answer it never saw (a timeout, a dropped connection) is not stored twice.
 */
export const BATCH_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export class BatchMemory<Answer> {
  private readonly answers = new Map<string, { answer: Promise<Answer>; at: number }>();

  constructor(
    private readonly maxBatches: number,
    private readonly ttlMs: number,
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
}
