/**
 * The files under DATA_DIR, read newest line first: for queries that reach past the in-memory
 * index, and to continue the seq numbering after a restart.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { matches, mayMatchLine, type LogFilter } from './filters.ts';
import type { LogEntry } from './protocol.ts';

/** winston-daily-rotate-file names them logs-YYYY-MM-DD.jsonl, then logs-YYYY-MM-DD.1.jsonl, .2 … by size. */
export const FILE_PATTERN = 'logs-%DATE%';
export const FILE_EXTENSION = '.jsonl';
const FILE_NAME = /^logs-(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.jsonl$/;

export interface LogFile {
  path: string;
  date: string;
  part: number;
  mtimeMs: number;
  size: number;
}

/** The log files, newest first. */
export async function logFiles(dir: string): Promise<LogFile[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const files: LogFile[] = [];
  for (const name of names) {
    const match = FILE_NAME.exec(name);
    if (!match) continue;
    try {
      const stat = await fs.stat(path.join(dir, name));
      files.push({ path: path.join(dir, name), date: match[1], part: Number(match[2] ?? 0), mtimeMs: stat.mtimeMs, size: stat.size });
    } catch {
      // Removed by retention while we listed: nothing to read.
    }
  }
  return files.sort((a, b) => (a.date === b.date ? b.part - a.part : a.date < b.date ? 1 : -1));
}

/** Lines of a file from the last to the first, reading backwards in chunks. */
export async function* linesBackward(file: string, chunkBytes = 256 * 1024): AsyncGenerator<string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch {
    return;
  }
  try {
    let position = (await handle.stat()).size;
    let rest = Buffer.alloc(0);
    while (position > 0) {
      const length = Math.min(chunkBytes, position);
      position -= length;
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, position);
      const buffer = rest.length ? Buffer.concat([chunk, rest]) : chunk;
      let end = buffer.length;
      while (end > 0) {
        const nl = buffer.lastIndexOf(10, end - 1);
        if (nl < 0) break;
        if (end > nl + 1) yield buffer.toString('utf8', nl + 1, end);
        end = nl;
      }
      rest = buffer.subarray(0, end);
    }
    if (rest.length) yield rest.toString('utf8');
  } finally {
    await handle.close();
  }
}

export interface FileScan {
  filter: LogFilter;
  /** Only lines numbered below this (the newer ones are in the index). */
  beforeSeq: number;
  /** Stop after reading this many bytes, and say the answer is truncated. */
  budgetBytes: number;
}

export interface FileSearch extends FileScan {
  limit: number;
}

/**
 * Lines are read newest received first, so once they were received well before `since` the rest are older:
 * a sender's clock may run ahead of ours, or a batch wait, by less than this.
 */
const RECEIVED_SLACK_MS = 10 * 60_000;
const RECEIVED_AT = '"receivedAt":"';

/** When the log service took the line, without parsing it: its own receivedAt is the last one, before seq. */
function receivedMs(line: string): number {
  const at = line.lastIndexOf(RECEIVED_AT);
  return at < 0 ? NaN : Date.parse(line.slice(at + RECEIVED_AT.length, at + RECEIVED_AT.length + 24));
}

/** Hands matching entries from the files to visit, newest first, until it returns false or the budget is spent. */
export async function scanFiles(dir: string, scan: FileScan, visit: (entry: LogEntry) => boolean): Promise<{ truncated: boolean }> {
  let budget = scan.budgetBytes;
  const stopBefore = scan.filter.sinceMs === undefined ? undefined : scan.filter.sinceMs - RECEIVED_SLACK_MS;
  for (const file of await logFiles(dir)) {
    // A file last written before `since` holds nothing newer.
    if (scan.filter.sinceMs !== undefined && file.mtimeMs < scan.filter.sinceMs) break;
    for await (const line of linesBackward(file.path)) {
      budget -= line.length + 1;
      if (budget < 0) return { truncated: true };
      if (stopBefore !== undefined && receivedMs(line) < stopBefore) return { truncated: false };
      if (!mayMatchLine(scan.filter, line)) continue;
      let entry: LogEntry;
      try {
        entry = JSON.parse(line) as LogEntry;
      } catch {
        continue; // a line still being written
      }
      if (typeof entry.seq === 'number' && entry.seq >= scan.beforeSeq) continue;
      if (typeof entry.message !== 'string' || !matches(scan.filter, entry)) continue;
      if (!visit(entry)) return { truncated: false };
    }
  }
  return { truncated: false };
}

/** Matching entries from the files, newest first. */
export async function searchFiles(dir: string, search: FileSearch): Promise<{ entries: LogEntry[]; truncated: boolean }> {
  const entries: LogEntry[] = [];
  if (search.limit <= 0) return { entries, truncated: false };
  const { truncated } = await scanFiles(dir, search, (entry) => entries.push(entry) < search.limit);
  return { entries, truncated };
}

/** The highest seq on disk (the newest file's last complete line), to continue numbering. */
export async function lastStoredSeq(dir: string): Promise<number | undefined> {
  for (const file of await logFiles(dir)) {
    for await (const line of linesBackward(file.path)) {
      try {
        const seq = (JSON.parse(line) as LogEntry).seq;
        if (typeof seq === 'number') return seq;
      } catch {
        // a torn last line: look at the one before
      }
    }
  }
  return undefined;
}
