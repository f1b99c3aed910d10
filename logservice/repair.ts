/**
 * Repairs log files whose last line was torn (the process died in the middle of a write), before the
 * file stream appends to them: otherwise the next line would be glued onto the fragment and never read
 * back. A fragment that is a whole entry missing only its newline gets the newline; any other is moved
 * to DATA_DIR/torn/<file>.<offset> (its lines were never acknowledged: a 202 waits for the whole write).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { logFiles } from './history.ts';

const TAIL_CHUNK = 64 * 1024;

/** Repairs every log file under dir; returns the names of those it repaired. */
export async function repairTornLines(dir: string): Promise<string[]> {
  const repaired: string[] = [];
  for (const file of await logFiles(dir)) {
    if (file.size > 0 && (await repairFile(dir, file.path, file.size))) repaired.push(path.basename(file.path));
  }
  return repaired;
}

async function repairFile(dir: string, file: string, size: number): Promise<boolean> {
  const handle = await fs.open(file, 'r+');
  try {
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    if (last[0] === 10) return false;
    const start = await fragmentStart(handle, size);
    const fragment = Buffer.alloc(size - start);
    await handle.read(fragment, 0, fragment.length, start);
    if (isEntry(fragment)) {
      await handle.write('\n', size);
    } else {
      const asideDir = path.join(dir, 'torn');
      await fs.mkdir(asideDir, { recursive: true });
      const aside = await fs.open(path.join(asideDir, `${path.basename(file)}.${start}`), 'w');
      try {
        await aside.write(fragment);
        await aside.sync();
      } finally {
        await aside.close();
      }
      await handle.truncate(start);
    }
    await handle.sync();
    return true;
  } finally {
    await handle.close();
  }
}

/** Where the last line starts: just after the last newline (0 when there is none). */
async function fragmentStart(handle: fs.FileHandle, size: number): Promise<number> {
  let end = size;
  while (end > 0) {
    const from = Math.max(0, end - TAIL_CHUNK);
    const chunk = Buffer.alloc(end - from);
    await handle.read(chunk, 0, chunk.length, from);
    const nl = chunk.lastIndexOf(10);
    if (nl >= 0) return from + nl + 1;
    end = from;
  }
  return 0;
}

function isEntry(fragment: Buffer): boolean {
  try {
    const entry = JSON.parse(fragment.toString('utf8')) as unknown;
    return entry !== null && typeof entry === 'object' && typeof (entry as { message?: unknown }).message === 'string';
  } catch {
    return false;
  }
}
