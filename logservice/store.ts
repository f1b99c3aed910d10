/**
 * Where accepted lines go: winston (winston-daily-rotate-file) writes them as JSON lines under
 * DATA_DIR, rotated by size and by day and kept for the retention period. The store counts the
 * bytes handed to the file but not yet written (the write queue, which backpressure watches),
 * keeps the recent-entries index, and announces stored lines to the live tail.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import DailyRotateFile from 'winston-daily-rotate-file';
import type { Logger } from 'winston';
import { RecentIndex } from './recent.ts';
import { FILE_EXTENSION, FILE_PATTERN, lastStoredSeq, searchFiles } from './history.ts';
import type { LogFilter } from './filters.ts';
import type { LogEntry, LogQueryResult } from './protocol.ts';

const MESSAGE = Symbol.for('message');

export interface LogStoreOptions {
  dataDir: string;
  /** Rotate a file when it passes this size ("100m", "512k"). */
  maxFileSize: string;
  /** Keep files for this many days ("14d") or this many files ("30"). */
  retention: string;
  /** Bytes accepted but not yet written to the file before POST /log answers 503. */
  queueLimitBytes: number;
  indexEntries: number;
  indexBytes: number;
  /** How much of the files one query may read. */
  queryScanBytes: number;
  logger: Logger;
}

interface PendingChunk {
  bytes: number;
  lines: number;
  /** Called once every byte of the chunk is in the file. */
  onWritten?: () => void;
}

export interface LogStoreEvents {
  /** The entries just stored, and each one's JSON line. */
  stored: [entries: LogEntry[], lines: string[]];
}

export class LogStore extends EventEmitter<LogStoreEvents> {
  private readonly transport: DailyRotateFile;
  private readonly index: RecentIndex;
  private readonly chunks: PendingChunk[] = [];
  private nextSeq: number;
  private pending = 0;
  private closed = false;
  linesStored = 0;
  linesWritten = 0;
  bytesWritten = 0;
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
      // Our own fs calls for the file stream, so we learn when bytes reach the file.
      options: { flags: 'a', fs: this.countingFs() },
    });
    const stream = (this.transport as unknown as { logStream: EventEmitter }).logStream;
    stream.on('error', (err: Error) => {
      this.writeErrors++;
      options.logger.error(`writing the log files failed: ${err.message}`);
    });
  }

  static async open(options: LogStoreOptions): Promise<LogStore> {
    fs.mkdirSync(options.dataDir, { recursive: true });
    const last = await lastStoredSeq(options.dataDir);
    return new LogStore(options, last === undefined ? 0 : last + 1);
  }

  private countingFs() {
    const done = (n: number) => this.onWritten(n);
    return {
      open: fs.open,
      close: fs.close,
      write: (fd: number, buffer: Buffer, offset: number, length: number, position: number | null, callback: (err: Error | null, written: number, buffer: Buffer) => void) =>
        fs.write(fd, buffer, offset, length, position, (err, written, buf) => {
          if (!err) done(written);
          callback(err, written, buf);
        }),
      writev: (fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null, callback: (err: Error | null, written: number, buffers: NodeJS.ArrayBufferView[]) => void) =>
        fs.writev(fd, buffers, position, (err, written, bufs) => {
          if (!err) done(written);
          callback(err, written, bufs);
        }),
    };
  }

  private onWritten(bytes: number): void {
    this.bytesWritten += bytes;
    this.pending -= bytes;
    let left = bytes;
    while (left > 0 && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const taken = Math.min(left, chunk.bytes);
      chunk.bytes -= taken;
      left -= taken;
      if (chunk.bytes === 0) {
        this.chunks.shift();
        this.linesWritten += chunk.lines;
        chunk.onWritten?.();
      }
    }
  }

  /** Bytes handed to the file but not yet written: the write queue. */
  get queuedBytes(): number {
    return this.pending;
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
    return this.pending > 0 && this.pending + incomingBytes > this.options.queueLimitBytes;
  }

  /** Numbers, stamps and writes the entries (one write for the whole batch); returns how many. `onWritten` hears when they are in the file. */
  append(entries: LogEntry[], receivedAt: string, onWritten?: () => void): number {
    if (this.closed) throw new Error('the log store is closed');
    if (entries.length === 0) return 0;
    const lines = new Array<string>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      entry.receivedAt = receivedAt;
      entry.seq = this.nextSeq++;
      lines[i] = JSON.stringify(entry);
    }
    const text = lines.join('\n');
    const bytes = Buffer.byteLength(text) + 1;
    this.pending += bytes;
    this.chunks.push({ bytes, lines: entries.length, onWritten });
    this.transport.log!({ [MESSAGE]: text } as never, () => {});
    for (let i = 0; i < entries.length; i++) this.index.add(entries[i].seq!, lines[i]);
    this.linesStored += entries.length;
    this.emit('stored', entries, lines);
    return entries.length;
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

  /** Stops taking lines and waits until every accepted byte is in the file. */
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
    // A file rotated away just before may still be finishing its last write.
    while (this.pending > 0 && this.writeErrors === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (this.pending > 0) this.options.logger.error(`${this.pending} bytes of log lines could not be written before exit`);
  }
}
