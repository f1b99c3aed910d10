/**
 * The scan: every walked file and archive entry with its content hash, or the reason it is skipped. A file whose
 * size and mtime are what the manifest has (an archive, likewise) is not read again: resuming a job of ten
 * thousand files costs a stat each, not a hash each.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Manifest, ScannedFile } from './manifest.ts';
import { sourceOf } from './manifest.ts';
import type { FileSource, Skipped, Walked } from './sources.ts';
import { ArchiveError, ZipArchive, type ZipLimits } from './zipArchive.ts';
import { PNG_SIGNATURE } from '../png.ts';

export const isPng = (bytes: Buffer) => bytes.subarray(0, 8).equals(PNG_SIGNATURE);
export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export interface ScanResult {
  files: ScannedFile[];
  archives: { path: string; size: number; mtimeMs: number }[];
  /** Archives that can't be used at all (corrupt, a bomb): the command stops on these. */
  problems: string[];
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** A file's hash and whether it starts as a PNG does, read as a stream (never the whole file at once). */
async function hashFile(file: string): Promise<{ sha256: string; png: boolean }> {
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8 - head.length)]);
    hash.update(chunk);
  }
  return { sha256: hash.digest('hex'), png: isPng(head) };
}

function notPngReason(size: number): string {
  return size === 0 ? 'empty' : 'not a PNG (its first bytes are not the PNG signature)';
}

export async function scan(walked: Walked, manifest: Manifest, job: string, limits: ZipLimits): Promise<ScanResult> {
  const result: ScanResult = { files: [], archives: [], problems: [] };
  const skip = (skipped: Skipped) => result.files.push({ source: skipped.name, path: skipped.name, entry: null, outRel: '', size: 0, mtimeMs: 0, sha256: null, skipped: skipped.reason });
  for (const skipped of walked.skipped) skip(skipped);

  const scanFile = async (source: FileSource) => {
    const known = manifest.file(job, source.path);
    const base = { source: source.path, path: source.path, entry: null, outRel: source.outRel, size: source.size, mtimeMs: source.mtimeMs };
    if (known && known.size === source.size && known.mtimeMs === source.mtimeMs && (known.sha256 || known.state === 'skipped')) {
      result.files.push({ ...base, sha256: known.sha256, skipped: known.state === 'skipped' ? (known.error ?? 'skipped') : undefined });
      return;
    }
    if (source.size > limits.maxEntryBytes) {
      result.files.push({ ...base, sha256: null, skipped: `${mb(source.size)}, more than the ${mb(limits.maxEntryBytes)} an image may be` });
      return;
    }
    try {
      const { sha256: hash, png } = await hashFile(source.path);
      result.files.push({ ...base, sha256: png ? hash : null, skipped: png ? undefined : notPngReason(source.size) });
    } catch (err) {
      result.files.push({ ...base, sha256: null, skipped: `cannot read it: ${(err as Error).message}` });
    }
  };

  const scanArchive = async (source: FileSource) => {
    const known = manifest.archive(job, source.path);
    if (known && known.size === source.size && known.mtimeMs === source.mtimeMs) {
      for (const file of manifest.archiveFiles(job, source.path)) {
        result.files.push({ ...file, skipped: file.state === 'skipped' ? (file.error ?? 'skipped') : undefined });
      }
      return;
    }
    const outBase = source.outRel.replace(/\.zip$/i, '');
    let opened;
    try {
      opened = await ZipArchive.open(source.path, limits);
    } catch (err) {
      if (err instanceof ArchiveError) result.problems.push(err.message);
      else throw err;
      return;
    }
    const { archive, entries, skipped } = opened;
    const files: ScannedFile[] = [];
    try {
      for (const { entry, reason } of skipped) {
        files.push({ source: sourceOf(source.path, entry), path: source.path, entry, outRel: '', size: 0, mtimeMs: source.mtimeMs, sha256: null, skipped: reason });
      }
      for (const entry of entries) {
        const bytes = await archive.read(entry.name);
        const png = isPng(bytes);
        files.push({
          source: sourceOf(source.path, entry.name),
          path: source.path,
          entry: entry.name,
          outRel: path.join(outBase, entry.name),
          size: bytes.length,
          mtimeMs: source.mtimeMs,
          sha256: png ? sha256(bytes) : null,
          skipped: png ? undefined : notPngReason(bytes.length),
        });
      }
    } catch (err) {
      if (err instanceof ArchiveError) result.problems.push(err.message);
      else throw err;
      return;
    } finally {
      archive.close();
    }
    result.files.push(...files);
    result.archives.push({ path: source.path, size: source.size, mtimeMs: source.mtimeMs });
  };

  for (const source of walked.sources) {
    if (source.kind === 'zip') await scanArchive(source);
    else await scanFile(source);
  }
  return result;
}
