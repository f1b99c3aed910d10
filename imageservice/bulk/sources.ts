/**
 * What `images submit` was given, walked: files, folders (recursively, in a stable sorted order) and .zip archives.
 * Symbolic links are followed, but a folder or file already walked (a loop, or two links to one place) is walked
 * once. Only stat() here: reading and hashing are scan.ts's.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';

export interface FileSource {
  kind: 'file' | 'zip';
  /** Absolute, as walked (through links). */
  path: string;
  /** Where its results go under --out: the name given, or the folder's name and the path inside it. */
  outRel: string;
  size: number;
  mtimeMs: number;
}

/** Something not uploaded, and why, in one line. */
export interface Skipped {
  name: string;
  reason: string;
}

export interface Walked {
  sources: FileSource[];
  skipped: Skipped[];
  /** Paths given that can't be walked at all (missing, unreadable): the command stops on these. */
  problems: string[];
}

const isZip = (file: string) => file.toLowerCase().endsWith('.zip');
const identity = (stats: Stats) => `${stats.dev}:${stats.ino}`;

function unreadable(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return `no such file or folder: ${file}`;
  if (code === 'EACCES' || code === 'EPERM') return `cannot read ${file}: permission denied`;
  if (code === 'ELOOP') return `${file}: too many levels of symbolic links`;
  return `cannot read ${file}: ${(err as Error).message}`;
}

/** Code-unit order: the same on every machine and locale, so a resumed walk meets files in the same order. */
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export async function walk(paths: string[]): Promise<Walked> {
  const walked: Walked = { sources: [], skipped: [], problems: [] };
  // Folders and files seen, by device and inode: a link back up the tree, or a second link, is not walked again.
  const seen = new Map<string, string>();
  // A path given on the command line that can't be read stops the command; one found inside a folder is skipped.
  const refuse = (file: string, err: unknown, given: boolean) => {
    if (given) walked.problems.push(unreadable(file, err));
    else walked.skipped.push({ name: file, reason: unreadable(file, err) });
  };

  const visit = async (file: string, outRel: string, given: boolean): Promise<void> => {
    let stats: Stats;
    try {
      stats = await fs.stat(file);
    } catch (err) {
      if (!given && (err as NodeJS.ErrnoException).code === 'ENOENT') walked.skipped.push({ name: file, reason: 'a broken symbolic link' });
      else refuse(file, err, given);
      return;
    }
    const earlier = seen.get(identity(stats));
    if (earlier !== undefined) {
      const what = stats.isDirectory() ? 'a folder' : 'a file';
      walked.skipped.push({ name: file, reason: `${what} already walked as ${earlier} (a symbolic link${file.startsWith(earlier + path.sep) ? ' loop' : ''})` });
      return;
    }
    seen.set(identity(stats), file);
    if (stats.isDirectory()) {
      let names: string[];
      try {
        names = (await fs.readdir(file)).sort(byName);
      } catch (err) {
        refuse(file, err, given);
        return;
      }
      for (const name of names) await visit(path.join(file, name), path.join(outRel, name), false);
      return;
    }
    if (!stats.isFile()) {
      walked.skipped.push({ name: file, reason: 'not a regular file' });
      return;
    }
    walked.sources.push({ kind: isZip(file) ? 'zip' : 'file', path: file, outRel, size: stats.size, mtimeMs: stats.mtimeMs });
  };

  for (const given of paths) {
    const absolute = path.resolve(given);
    await visit(absolute, path.basename(absolute), true);
  }
  return walked;
}
