/**
 * Log retention by total size (age is winston-daily-rotate-file's maxFiles): the oldest files go
 * first until the rest fit, and the file being written is never removed, so the newest lines always stay.
 */
import fs from 'node:fs/promises';
import { logFiles, type LogFile } from './history.ts';

export interface SizeRetention {
  files: number;
  bytes: number;
  /** The bytes the files hold after the run. */
  keptBytes: number;
}

/**
 * Removes the oldest log files in `dir` while their total passes `maxBytes` (the newest file always stays).
 * `beforeRemoving` is given the seq of the first line that stays (undefined if none is known) before any file
 * goes, so the caller can let go of the lines that leave with them first: a query never finds a line no file holds.
 */
export async function removeOldestBeyond(dir: string, maxBytes: number, beforeRemoving: (firstKeptSeq: number | undefined) => void = () => {}): Promise<SizeRetention> {
  const files = await logFiles(dir); // newest first
  let total = files.reduce((sum, file) => sum + file.size, 0);
  let keep = files.length;
  while (keep > 1 && total > maxBytes) total -= files[--keep].size;
  const gone = files.slice(keep);
  if (gone.length === 0) return { files: 0, bytes: 0, keptBytes: total };
  beforeRemoving(await firstSeq(files.slice(0, keep)));
  for (const file of gone) await fs.rm(file.path, { force: true });
  return { files: gone.length, bytes: gone.reduce((sum, file) => sum + file.size, 0), keptBytes: total };
}

/** The seq of the first line of the oldest of `files` (newest first): entries numbered below it are in none of them. */
async function firstSeq(files: LogFile[]): Promise<number | undefined> {
  for (const file of [...files].reverse()) {
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

/** The seq of the first line of the oldest log file in `dir`: entries numbered below it are in no file any more. */
export async function oldestStoredSeq(dir: string): Promise<number | undefined> {
  return firstSeq(await logFiles(dir));
}
