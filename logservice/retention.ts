/**
 * Log retention by total size (age is winston-daily-rotate-file's maxFiles): the oldest files go
 * first until the rest fit, and the file being written is never removed, so the newest lines always stay.
 */
import fs from 'node:fs/promises';
import { logFiles } from './history.ts';

export interface SizeRetention {
  files: number;
  bytes: number;
  /** The bytes the files hold after the run. */
  keptBytes: number;
}

/** Removes the oldest log files in `dir` while their total passes `maxBytes` (the newest file always stays). */
export async function removeOldestBeyond(dir: string, maxBytes: number): Promise<SizeRetention> {
  const files = await logFiles(dir); // newest first
  let total = files.reduce((sum, file) => sum + file.size, 0);
  const removed = { files: 0, bytes: 0 };
  for (let i = files.length - 1; i >= 1 && total > maxBytes; i--) {
    await fs.rm(files[i].path, { force: true });
    total -= files[i].size;
    removed.files++;
    removed.bytes += files[i].size;
  }
  return { ...removed, keptBytes: total };
}

/** The seq of the first line of the oldest log file: entries numbered below it are in no file any more. */
export async function oldestStoredSeq(dir: string): Promise<number | undefined> {
  const files = await logFiles(dir);
  for (const file of files.reverse()) {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file.path, 'r');
    } catch {
      continue; // removed meanwhile
    }
    try {
      const head = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      const text = head.toString('utf8', 0, bytesRead);
      const end = text.indexOf('\n');
      if (end < 0) continue; // empty, or one line longer than we read: look at the next file
      const seq = (JSON.parse(text.slice(0, end)) as { seq?: unknown }).seq;
      if (typeof seq === 'number') return seq;
    } catch {
      // not a line of ours: the next file says
    } finally {
      await handle.close();
    }
  }
  return undefined;
}
