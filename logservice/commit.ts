/**
 * Tells when the bytes handed to winston's file stream are durable: written to the file and fsynced.
 * winston-daily-rotate-file gives no callback for a write, so its stream does its file I/O through
 * the fs functions below: each write that completes on a file is seen, and one fsync covers every write
 * that completed while the previous fsync ran (group commit), so the rate holds.
 */
import fs from 'node:fs';
import path from 'node:path';
import { syncDirectory } from '../shared/files.ts';

interface Chunk {
  /** Bytes of the chunk not yet written. */
  left: number;
  lines: number;
  settle: (err?: Error) => void;
}

/** One file of the stream: a rotation opens the next one, while the last writes to the old one may still be on their way. */
interface FileSegment {
  fd?: number;
  /** Handed to the stream, not yet wholly written, oldest first (one stream writes its file in order). */
  unwritten: Chunk[];
  /** Written, waiting for the next fsync. */
  unsynced: Chunk[];
  syncing: boolean;
  /** The stream closes the file: after the fsync under way, and one more. */
  closeAfterSync?: () => void;
}

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void;

export class GroupCommit {
  private readonly segments = new Map<number, FileSegment>();
  private readonly byFd = new Map<number, FileSegment>();
  /** The file the next chunk goes to, and the file the stream's next open is for. */
  private current = 0;
  private opened = 0;
  private outstanding = 0;
  pendingBytes = 0;
  linesDurable = 0;
  fsyncs = 0;

  /** Counts a chunk just handed to the stream; resolves once it is in the file and fsynced. */
  expect(bytes: number, lines: number): Promise<void> {
    this.pendingBytes += bytes;
    this.outstanding++;
    return new Promise<void>((resolve, reject) => {
      const chunk: Chunk = {
        left: bytes,
        lines,
        settle: (err) => {
          this.outstanding--;
          if (err) return reject(err);
          this.linesDurable += lines;
          resolve();
        },
      };
      this.segment(this.current).unwritten.push(chunk);
    });
  }

  /** The stream moved to a new file: the chunks from now on go there. */
  rotated(): void {
    this.current++;
  }

  /** Chunks not yet durable (nor failed). */
  get waiting(): number {
    return this.outstanding;
  }

  /** The stream failed: no chunk still waiting for a write will get it. */
  failUnwritten(err: Error): void {
    for (const segment of this.segments.values()) {
      this.pendingBytes -= segment.unwritten.reduce((sum, chunk) => sum + chunk.left, 0);
      for (const chunk of segment.unwritten.splice(0)) chunk.settle(err);
    }
  }

  /** The file functions for the stream (its `fs` option). */
  fileSystem() {
    return {
      open: (file: string, flags: string, mode: number, callback: Callback<number>) => {
        const segment = this.segment(this.opened++);
        fs.open(file, flags, mode, (err, fd) => {
          if (err) return callback(err, fd);
          segment.fd = fd;
          this.byFd.set(fd, segment);
          // The file may be new: its name must be durable too (best effort: a folder that can't be opened still takes the lines).
          syncDirectory(path.dirname(file)).then(
            () => callback(null, fd),
            () => callback(null, fd),
          );
        });
      },
      write: (fd: number, buffer: Buffer, offset: number, length: number, position: number | null, callback: (err: NodeJS.ErrnoException | null, written: number, buffer: Buffer) => void) =>
        fs.write(fd, buffer, offset, length, position, (err, written, buf) => {
          if (!err) this.written(fd, written);
          callback(err, written, buf);
        }),
      writev: (fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null, callback: (err: NodeJS.ErrnoException | null, written: number, buffers: NodeJS.ArrayBufferView[]) => void) =>
        fs.writev(fd, buffers, position ?? null, (err, written, bufs) => {
          if (!err) this.written(fd, written);
          callback(err, written, bufs);
        }),
      close: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
        const segment = this.byFd.get(fd);
        if (!segment) return fs.close(fd, callback);
        const finish = () => this.closeSegment(fd, segment, callback);
        if (segment.syncing) segment.closeAfterSync = finish;
        else finish();
      },
    };
  }

  private segment(index: number): FileSegment {
    let segment = this.segments.get(index);
    if (!segment) this.segments.set(index, (segment = { unwritten: [], unsynced: [], syncing: false }));
    return segment;
  }

  private written(fd: number, bytes: number): void {
    const segment = this.byFd.get(fd);
    if (!segment) return;
    this.pendingBytes -= bytes;
    let left = bytes;
    while (left > 0 && segment.unwritten.length > 0) {
      const chunk = segment.unwritten[0];
      const taken = Math.min(left, chunk.left);
      chunk.left -= taken;
      left -= taken;
      if (chunk.left === 0) segment.unsynced.push(segment.unwritten.shift()!);
    }
    this.sync(segment);
  }

  private sync(segment: FileSegment): void {
    if (segment.syncing || segment.unsynced.length === 0 || segment.fd === undefined) return;
    segment.syncing = true;
    const group = segment.unsynced;
    segment.unsynced = [];
    this.fsyncs++;
    fs.fsync(segment.fd, (err) => {
      segment.syncing = false;
      for (const chunk of group) chunk.settle(err ?? undefined);
      const close = segment.closeAfterSync;
      segment.closeAfterSync = undefined;
      if (close) close();
      else this.sync(segment);
    });
  }

  /** Our fsyncs of a file are over before it is closed, so an fsync never reaches a number reused by another file. */
  private closeSegment(fd: number, segment: FileSegment, callback: (err: NodeJS.ErrnoException | null) => void): void {
    fs.fsync(fd, (syncErr) => {
      for (const chunk of segment.unsynced.splice(0)) chunk.settle(syncErr ?? undefined);
      this.byFd.delete(fd);
      fs.close(fd, (closeErr) => {
        const unwritten = segment.unwritten.splice(0);
        this.pendingBytes -= unwritten.reduce((sum, chunk) => sum + chunk.left, 0);
        for (const chunk of unwritten) chunk.settle(new Error('the log file was closed before these lines were written'));
        for (const [index, s] of this.segments) if (s === segment && index !== this.current) this.segments.delete(index);
        callback(closeErr);
      });
    });
  }
}
