import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'winston';
import type { InstanceRecord } from './registry.ts';
import { syncDirectory, writeFileAtomic, writeFileAtomicSync } from '../shared/files.ts';

const SNAPSHOT = 'registrations.json';
const journalName = (generation: number) => `registrations.${generation}.journal`;
const JOURNAL_PATTERN = /^registrations\.(\d+)\.journal$/;
/** The journal is folded into a new snapshot once it outgrows this, or twice the snapshot. */
const MIN_COMPACT_BYTES = 4 * 1024 * 1024;

/**
 * What is saved of an instance: who it is, its state and history, not its latest check (a restarted
 * registry checks everyone again at once, so check results would be stale anyway).
 */
export function persisted(record: InstanceRecord): string {
  // A replacer rather than a copy without those fields: copying a record's many fields cost more than the JSON.
  return JSON.stringify(record, function (this: unknown, key: string, value: unknown) {
    return this === record && UNSAVED.has(key) ? undefined : value;
  });
}

const UNSAVED = new Set<string>(['lastCheckAt', 'lastLatencyMs', 'consecutiveFailures', 'lastError', 'lastSeenAt'] satisfies (keyof InstanceRecord)[]);

interface Waiter {
  /** Durable once the journal holds this many of the changes made so far. */
  upTo: number;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Registrations on disk under DATA_DIR: a snapshot and a journal of the changes since it.
 * `sync()` is the promise behind an acknowledgement: it resolves once every change made so far is
 * written and fsynced, and one write with one fsync covers every change that arrived meanwhile
 * (group commit), so the rate holds with many callers waiting. Changes nobody waits for (the
 * health checks' up and down) ride along with the next write, or a debounced one.
 */
export class RegistrationStore {
  private readonly snapshotFile: string;
  private readonly saved = new Map<InstanceRecord, string>();
  private generation = 1;
  private journal?: number;
  private journalBytes = 0;
  private snapshotBytes = 0;
  private lines: string[] = [];
  private appended = 0;
  private waiters: Waiter[] = [];
  private writing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  /** A write failed part-way: the journal may end in a fragment, so the next write starts a new one. */
  private broken = false;
  private compactNext = false;

  constructor(
    private readonly dataDir: string,
    private readonly logger: Logger,
    private readonly debounceMs = 200,
  ) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.snapshotFile = path.join(dataDir, SNAPSHOT);
  }

  /**
   * Reads the snapshot and replays the journals after it (a torn last line, from a crash in the middle
   * of a write that was never acknowledged, is skipped), then folds them into a new snapshot.
   */
  load(): InstanceRecord[] {
    const byUrl = new Map<string, InstanceRecord>();
    const idToUrl = new Map<string, string>();
    const put = (record: InstanceRecord) => {
      const heldUrl = idToUrl.get(record.instanceId);
      if (heldUrl !== undefined) byUrl.delete(heldUrl);
      const holder = byUrl.get(record.serviceURL);
      if (holder) idToUrl.delete(holder.instanceId);
      byUrl.set(record.serviceURL, { ...record, consecutiveFailures: 0 });
      idToUrl.set(record.instanceId, record.serviceURL);
    };
    const snapshot = this.readSnapshot();
    this.generation = snapshot.journal;
    for (const record of snapshot.instances) put(record);
    for (const { generation, file } of this.journals()) {
      if (generation < this.generation) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!line) return;
        let change: { put?: InstanceRecord; del?: string };
        try {
          change = JSON.parse(line);
        } catch {
          if (i < lines.length - 1) this.logger.error(`skipping an unreadable line ${i + 1} of ${file}`);
          return;
        }
        if (change.put) put(change.put);
        else if (change.del !== undefined) {
          const url = idToUrl.get(change.del);
          if (url !== undefined) byUrl.delete(url);
          idToUrl.delete(change.del);
        }
      });
      this.generation = Math.max(this.generation, generation);
    }
    const records = [...byUrl.values()];
    for (const record of records) this.saved.set(record, persisted(record));
    this.compactSync();
    return records;
  }

  /** An instance was added or changed (`removed`: it is gone). Durable after the next `sync()`. */
  changed(record: InstanceRecord, removed = false): void {
    let line: string;
    if (removed) {
      this.saved.delete(record);
      line = `{"del":${JSON.stringify(record.instanceId)}}\n`;
    } else {
      const text = persisted(record);
      this.saved.set(record, text);
      line = `{"put":${text}}\n`;
    }
    this.lines.push(line);
    this.appended++;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.pump();
    }, this.debounceMs);
  }

  /** Resolves once every change made so far is on disk; rejects if the write that carries it fails. */
  sync(): Promise<void> {
    const upTo = this.appended;
    const promise = new Promise<void>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
    void this.pump();
    return promise;
  }

  /** At shutdown: everything into a new snapshot, so the next start has no journal to replay. */
  async flush(): Promise<void> {
    this.compactNext = true;
    await this.sync().catch(() => undefined);
  }

  /** One write at a time; each takes every change that arrived while the one before it ran. */
  private pump(): Promise<void> {
    // Cleared when the write settles, not inside it (a write with nothing to do ends before `??=` stores it);
    // a sync() that came in between the write's last look and now is served by the next one.
    this.writing ??= this.write().finally(() => {
      this.writing = undefined;
      if (this.waiters.length > 0) void this.pump();
    });
    return this.writing;
  }

  private async write(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.lines.length > 0 || this.waiters.length > 0) {
      const upTo = this.appended;
      const text = this.lines.join('');
      this.lines = [];
      try {
        if (this.compactNext || this.broken || this.journal === undefined || this.journalBytes > Math.max(MIN_COMPACT_BYTES, 2 * this.snapshotBytes)) {
          this.compactNext = false;
          await this.compact();
        } else if (text) await this.append(text);
        this.broken = false;
        this.settle(upTo);
      } catch (err) {
        this.broken = true;
        this.settle(upTo, new Error(`could not save registrations: ${(err as Error).message}`));
        this.logger.error(`could not save registrations: ${(err as Error).message}`);
        // Try again in a while; the changes are still in memory and the next write starts a new journal.
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          void this.pump();
        }, 1000);
        return;
      }
    }
  }

  private settle(upTo: number, err?: Error): void {
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.upTo > upTo) still.push(waiter);
      else if (err) waiter.reject(err);
      else waiter.resolve();
    }
    this.waiters = still;
  }

  private async append(text: string): Promise<void> {
    const fd = this.journal!;
    const bytes = Buffer.from(text);
    await new Promise<void>((resolve, reject) => fs.write(fd, bytes, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    this.journalBytes += bytes.length;
  }

  /** A new snapshot of everything (it covers every change made so far), then a fresh journal after it. */
  private async compact(): Promise<void> {
    const next = this.generation + 1;
    const text = this.snapshotText(next);
    await writeFileAtomic(this.snapshotFile, text);
    this.switchJournal(next, text.length);
    await syncDirectory(this.dataDir);
  }

  private compactSync(): void {
    const next = this.generation + 1;
    const text = this.snapshotText(next);
    writeFileAtomicSync(this.snapshotFile, text);
    this.switchJournal(next, text.length);
  }

  private snapshotText(journal: number): string {
    return `{"version":2,"journal":${journal},"instances":[${[...this.saved.values()].join(',')}]}`;
  }

  private switchJournal(next: number, snapshotBytes: number): void {
    const old = this.generation;
    if (this.journal !== undefined) fs.closeSync(this.journal);
    this.journal = fs.openSync(path.join(this.dataDir, journalName(next)), 'a');
    this.generation = next;
    this.journalBytes = 0;
    this.snapshotBytes = snapshotBytes;
    for (const { generation, file } of this.journals()) if (generation <= old) fs.rmSync(file, { force: true });
  }

  private readSnapshot(): { journal: number; instances: InstanceRecord[] } {
    let text: string;
    try {
      text = fs.readFileSync(this.snapshotFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { journal: 1, instances: [] };
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as { journal?: number; instances?: InstanceRecord[] };
      return { journal: parsed.journal ?? 1, instances: Array.isArray(parsed.instances) ? parsed.instances : [] };
    } catch (err) {
      this.logger.error(`ignoring unreadable ${this.snapshotFile}: ${(err as Error).message}`);
      return { journal: 1, instances: [] };
    }
  }

  private journals(): { generation: number; file: string }[] {
    return fs
      .readdirSync(this.dataDir)
      .flatMap((name) => {
        const match = JOURNAL_PATTERN.exec(name);
        return match ? [{ generation: Number(match[1]), file: path.join(this.dataDir, name) }] : [];
      })
      .sort((a, b) => a.generation - b.generation);
  }

  close(): void {
    clearTimeout(this.timer);
    if (this.journal !== undefined) fs.closeSync(this.journal);
    this.journal = undefined;
  }
}
