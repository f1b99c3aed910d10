/**
 * One file's way up and its result's way down. What is sent is exactly the bytes that were hashed: a file is read
 * whole, checked against its stat before and after the read and against the scan's hash, so a file that changes
 * under us is refused with a line and never becomes a task of mixed content. A result is written to a temporary
 * name and renamed, so an interrupted download leaves no half image under the result's name.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ManifestFile } from './manifest.ts';
import { sha256 } from './scan.ts';
import { ZipArchive, type ZipLimits } from './zipArchive.ts';

/** The file is not what the scan saw: not sent; the next run hashes it again. */
export class ChangedError extends Error {
  override readonly name = 'ChangedError';
}

/** Archives opened for uploads, one reader each, closed at the end. */
export class ArchiveReaders {
  private readonly open = new Map<string, Promise<ZipArchive>>();

  constructor(private readonly limits: ZipLimits) {}

  async read(file: ManifestFile): Promise<Buffer> {
    let archive = this.open.get(file.path);
    if (!archive) {
      archive = (async () => {
        const stats = await fs.stat(file.path);
        // Entries carry their archive's mtime; the hash below catches the rest.
        if (stats.mtimeMs !== file.mtimeMs) throw new ChangedError(`${file.path} changed since it was scanned`);
        return (await ZipArchive.open(file.path, this.limits)).archive;
      })();
      this.open.set(file.path, archive);
    }
    return (await archive).read(file.entry!);
  }

  async close(): Promise<void> {
    for (const archive of this.open.values()) (await archive.catch(() => undefined))?.close();
    this.open.clear();
  }
}

/** The bytes to send for a file, as scanned (or ChangedError). */
export async function readVerified(file: ManifestFile, archives: ArchiveReaders): Promise<Buffer> {
  let bytes: Buffer;
  if (file.entry !== null) {
    bytes = await archives.read(file);
  } else {
    const before = await fs.stat(file.path);
    bytes = await fs.readFile(file.path);
    const after = await fs.stat(file.path);
    if (before.size !== after.size || before.mtimeMs !== after.mtimeMs || after.size !== bytes.length) {
      throw new ChangedError(`${file.path} changed while it was read (size or modification time moved)`);
    }
  }
  if (sha256(bytes) !== file.sha256) throw new ChangedError(`${file.source} changed since it was scanned (its content hash differs)`);
  return bytes;
}

/** `photos/sub/a.png` with op invert -> `<out>/photos/sub/a.invert.png`, never outside `<out>`. */
export function resultPath(outDir: string, outRel: string, op: string): string {
  const out = path.resolve(outDir);
  const parsed = path.parse(path.normalize(outRel));
  const target = path.resolve(out, parsed.dir, `${parsed.name}.${op}.png`);
  if (target !== out && !target.startsWith(out + path.sep)) throw new Error(`${outRel} would be written outside ${out}`);
  return target;
}

/** Unique result paths in manifest order: a second a.png (from another folder given) becomes a-2.invert.png. */
export function resultPaths(files: ManifestFile[], outDir: string, op: string): Map<string, string> {
  const taken = new Set<string>();
  const bySource = new Map<string, string>();
  for (const file of files) {
    if (file.state === 'skipped') continue;
    let target = file.resultPath ?? resultPath(outDir, file.outRel, op);
    for (let n = 2; taken.has(target); n++) target = target.replace(/(-\d+)?(\.[^.]+\.png)$/, `-${n}$2`);
    taken.add(target);
    bySource.set(file.source, target);
  }
  return bySource;
}

/** Writes a result; `inFlight` holds the temporary names meanwhile, so an interrupted run can remove them on its way out. */
export async function writeResult(target: string, bytes: Buffer, inFlight: Set<string>): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const partial = `${target}.partial-${process.pid}`;
  inFlight.add(partial);
  try {
    await fs.writeFile(partial, bytes);
    await fs.rename(partial, target);
  } finally {
    inFlight.delete(partial);
    await fs.rm(partial, { force: true });
  }
}
