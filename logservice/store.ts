/**
 * Where accepted lines go: winston's winston-daily-rotate-file writes them as JSON lines under
 * DATA_DIR (one write per batch), rotated by size and by day and kept for the retention period. An
 * append resolves once its lines are written and fsynced (GroupCommit). The store counts the bytes handed to the file but
 * not yet written (the write queue, which backpressure watches), keeps the recent-entries index, and
 * announces stored lines to the live tail.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import DailyRotateFile from 'winston-daily-rotate-file';
import type { Logger } from 'winston';
import { RecentIndex } from './recent.ts';
import { FILE_EXTENSION, FILE_PATTERN, lastStoredSeq, scanFiles, searchFiles } from './history.ts';
import { GroupCommit } from './commit.ts';
import { repairTornLines } from './repair.ts';
import { oldestStoredSeq, removeOldestBeyond } from './retention.ts';
import type { HousekeepingJob, JobReport } from '../shared/housekeeping.ts';
import type { LogFilter } from './filters.ts';
import type { LogEntry, LogQueryResult } from './protocol.ts';

export interface LogStoreOptions {
  dataDir: string;
  /** Rotate a file when it passes this size ("100m", "512k"). */
  maxFileSize: string;
  /** Keep files for this many days ("14d") or this many files ("30"). */
  retention: string;
  /** The most the files may hold together (0: no limit); the oldest files go first (housekeepingJobs). */
  maxTotalBytes?: number;
  /** Bytes accepted but not yet written to the file before POST /log answers 503. */
  queueLimitBytes: number;
  indexEntries: number;
  indexBytes: number;
  /** How much of the files one query may read. */
  queryScanBytes: number;
  logger: Logger;
}

export interface LogStoreEvents {
  /** The entries just stored, and each one's JSON line. */
  stored: [entries: LogEntry[], lines: string[]];
}

export class LogStore extends EventEmitter<LogStoreEvents> {
  private readonly transport: DailyRotateFile;
  /** winston-daily-rotate-file's stream: rotation by size and day, and retention, are its. */
  private readonly file: EventEmitter & { write(chunk: Buffer): void };
  private readonly index: RecentIndex;
  private readonly commit = new GroupCommit();
  private nextSeq: number;
  private closed = false;
  /** Set when the file stream failed: nothing more can be made durable. */
  private failure?: Error;
  /** Files the rotator removed for their age and no housekeeping run has reported yet. */
  private removedForAge: string[] = [];
  /** Runs the log-age job now (set by housekeepingJobs), so the rotator's removals are logged and counted. */
  private reportAge: () => void = () => void this.forgetRemoved();
  linesStored = 0;
  writeErrors = 0;

  private constructor(
    private readonly options: LogStoreOptions,
    firstSeq: number,
  ) {
    super();
    this.nextSeq = firstSeq;
    this.index = new RecentIndex(options.indexEntries, options.indexBytes);
    this.transport = new DailyRotateFile({
      dirname: options.dataDir,
      filename: FILE_PATTERN,
      extension: FILE_EXTENSION,
      datePattern: 'YYYY-MM-DD',
      maxSize: options.maxFileSize,
      maxFiles: options.retention,
      auditFile: path.join(options.dataDir, '.audit.json'),
      eol: '\n',
      // The file stream does its I/O through these, so we learn when bytes are in the file and fsync them.
      options: { flags: 'a', fs: this.commit.fileSystem() },
    });
    const stream = (this.transport as unknown as { logStream: LogStore['file'] }).logStream;
    this.file = stream;
    // Emitted inside the write that moves to the new file, before that write's bytes go out.
    stream.on('rotate', () => this.commit.rotated());
    // A file the rotator removed for its age takes its lines out of the index too.
    this.transport.on('logRemoved', (file: string) => {
      this.removedForAge.push(path.basename(file));
      this.reportAge();
    });
    stream.on('error', (err: Error) => {
      this.writeErrors++;
      this.failure ??= err;
      this.commit.failUnwritten(err);
      options.logger.error(`writing the log files failed: ${err.message}`);
    });
  }

  static async open(options: LogStoreOptions): Promise<LogStore> {
    fs.mkdirSync(options.dataDir, { recursive: true });
    for (const torn of await repairTornLines(options.dataDir)) options.logger.warn(`repaired a torn last line in ${torn}`);
    const last = await lastStoredSeq(options.dataDir);
    return new LogStore(options, last === undefined ? 0 : last + 1);
  }

  /** Bytes handed to the file but not yet written: the write queue. */
  get queuedBytes(): number {
    return this.commit.pendingBytes;
  }

  get fsyncs(): number {
    return this.commit.fsyncs;
  }

  /** Lines written and fsynced since start. */
  get linesWritten(): number {
    return this.commit.linesDurable;
  }

  get indexedEntries(): number {
    return this.index.size;
  }

  get indexedBytes(): number {
    return this.index.byteSize;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True when a body of this size must wait: the queue is full (one body always fits an empty queue). */
  isFull(incomingBytes: number): boolean {
    const pending = this.commit.pendingBytes;
    return pending > 0 && pending + incomingBytes > this.options.queueLimitBytes;
  }

  /** Numbers, stamps and writes the entries (one write for the whole batch); resolves once they are in the file and fsynced. */
  append(entries: LogEntry[], receivedAt: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the log store is closed'));
    if (this.failure) return Promise.reject(new Error(`the log files cannot be written: ${this.failure.message}`));
    if (entries.length === 0) return Promise.resolve();
    const firstSeq = this.nextSeq;
    const lines = new Array<string>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      entry.receivedAt = receivedAt;
      entry.seq = this.nextSeq++;
      lines[i] = JSON.stringify(entry);
    }
    const text = lines.join('\n');
    // Not from Buffer's shared pool: the index keeps these bytes, and a small batch would keep the pool's whole slab.
    // The last newline goes in as a byte: text + '\n' would be one more copy of the batch on V8's heap.
    const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text) + 1);
    bytes.write(text);
    bytes[bytes.length - 1] = 0x0a;
    // Straight to winston-daily-rotate-file's rotating stream, as its log() hands it a line, but as the bytes the index keeps too.
    this.file.write(bytes);
    // Counted after the write is handed over: a rotation inside it moves this chunk to the new file.
    const durable = this.commit.expect(bytes.length, entries.length);
    // The index holds the batch's bytes and where each line is in them (in characters while every one is a byte), not the lines.
    const ascii = bytes.length === text.length + 1;
    for (let i = 0, start = 0; i < entries.length; i++) {
      const end = start + (ascii ? lines[i].length : Buffer.byteLength(lines[i]));
      this.index.add(firstSeq + i, bytes, start, end);
      start = end + 1;
    }
    this.linesStored += entries.length;
    this.emit('stored', entries, lines);
    // Not an async function: nothing of the batch stays referenced while it waits for the fsync.
    return durable;
  }

  /** Matching entries, newest first: from the index, then from the files for older ones. */
  async query(filter: LogFilter, limit: number): Promise<LogQueryResult> {
    const entries = this.index.query(filter, limit);
    if (entries.length >= limit) return { entries, truncated: false };
    const beforeSeq = this.index.oldestSeq() ?? this.nextSeq;
    if (beforeSeq === 0) return { entries, truncated: false };
    const older = await searchFiles(this.options.dataDir, {
      filter,
      limit: limit - entries.length,
      beforeSeq,
      budgetBytes: this.options.queryScanBytes,
    });
    return { entries: entries.concat(older.entries), truncated: older.truncated };
  }

  /** Hands every matching entry to visit, newest first (index, then files within the scan budget), until it returns false. */
  async scan(filter: LogFilter, visit: (entry: LogEntry) => boolean): Promise<{ truncated: boolean }> {
    const beforeSeq = this.index.oldestSeq() ?? this.nextSeq;
    if (!this.index.each(filter, visit) || beforeSeq === 0) return { truncated: false };
    return scanFiles(this.options.dataDir, { filter, beforeSeq, budgetBytes: this.options.queryScanBytes }, visit);
  }

  /**
   * The jobs: log-age reports each removal the rotator makes for LOG_RETENTION (it removes at a
   * rotation, not on a schedule; `runNow` runs the job then, so it is logged and counted like the
   * others), and log-retention keeps the files within maxTotalBytes on its schedule (none without a limit).
   */
  housekeepingJobs(cron: string | undefined, runNow?: (job: string) => Promise<unknown> | undefined): HousekeepingJob[] {
    if (runNow) this.reportAge = () => void runNow('log-age')?.catch(() => undefined);
    const max = this.options.maxTotalBytes ?? 0;
    const jobs: HousekeepingJob[] = [{ name: 'log-age', cron: undefined, run: () => this.forgetRemoved() }];
    if (max > 0) jobs.push({ name: 'log-retention', cron, run: () => this.enforceTotalSize(max) });
    return jobs;
  }

  /** Removes the oldest files past `maxBytes`, and their entries from the index (queries must not find lines no file holds). */
  async enforceTotalSize(maxBytes: number): Promise<JobReport> {
    let forgotten = 0;
    const result = await removeOldestBeyond(this.options.dataDir, maxBytes, (firstKept) => {
      if (firstKept !== undefined) forgotten = this.index.dropBefore(firstKept);
    });
    const detail = result.files ? `${result.bytes} bytes; ${result.keptBytes} bytes kept (limit ${maxBytes}); ${forgotten} entries left the index` : undefined;
    return { removed: { files: result.files }, detail };
  }

  /** After the rotator removed files for their age (it says so only afterwards): their lines leave the index too. */
  private async forgetRemoved(): Promise<JobReport> {
    const files = this.removedForAge.splice(0);
    const oldest = await oldestStoredSeq(this.options.dataDir);
    const forgotten = oldest === undefined ? 0 : this.index.dropBefore(oldest);
    if (files.length === 0) return { removed: { files: 0 } };
    return { removed: { files: files.length }, detail: `${files.join(', ')} (past LOG_RETENTION ${this.options.retention}); ${forgotten} entries left the index` };
  }

  /** Stops taking lines and waits until every accepted line is in the file and fsynced. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const deadline = Date.now() + timeoutMs;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.transport.once('finish', () => {
        clearTimeout(timer);
        resolve();
      });
      this.transport.close!();
    });
    // A file rotated away just before may still be finishing its last write, and the last fsync follows the finish.
    while (this.commit.waiting > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (this.commit.waiting > 0) this.options.logger.error(`${this.commit.waiting} batches of log lines could not be made durable before exit`);
  }
}
