/**
 * A .zip archive read in place with yauzl: entries are inflated into memory one at a time and nothing is ever
 * written to disk, so an entry named ../x or /etc/x can't land anywhere (it is refused all the same, with a reason).
 * A zip bomb is stopped by its claims and by its deeds: an entry that declares more than one image may be is
 * skipped, an archive that declares more than the budget in all is refused, and an entry that inflates past
 * what it declared (or past the limit) breaks off the read.
 */
import yauzl from 'yauzl';
import type { Readable } from 'node:stream';

export interface ZipLimits {
  /** The most one entry may inflate to (an image larger can't be uploaded anyway). */
  maxEntryBytes: number;
  /** The most all of an archive's entries may inflate to, together. */
  maxTotalBytes: number;
  maxEntries: number;
}

/** The archive as a whole can't be used (corrupt, or a bomb): the command stops before anything is sent. */
export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
}

export interface ZipEntryInfo {
  name: string;
  /** As declared in the central directory. */
  size: number;
}

/** An entry not read, and why. */
export interface SkippedEntry {
  entry: string;
  reason: string;
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export class ZipArchive {
  private inflated = 0;

  private constructor(
    private readonly file: string,
    private readonly zip: yauzl.ZipFile,
    private readonly byName: Map<string, yauzl.Entry>,
    private readonly limits: ZipLimits,
  ) {}

  /** Reads the central directory: the entries that may be images, and the ones skipped with why. */
  static async open(file: string, limits: ZipLimits): Promise<{ archive: ZipArchive; entries: ZipEntryInfo[]; skipped: SkippedEntry[] }> {
    let zip: yauzl.ZipFile;
    try {
      // decodeStrings off: yauzl would end the whole listing at the first unsafe name; we refuse that entry alone.
      zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
    } catch (err) {
      throw new ArchiveError(`${file} is not a readable zip archive: ${(err as Error).message}`);
    }
    const byName = new Map<string, yauzl.Entry>();
    const entries: ZipEntryInfo[] = [];
    const skipped: SkippedEntry[] = [];
    let declared = 0;
    try {
      if (zip.entryCount > limits.maxEntries) throw new ArchiveError(`${file} has ${zip.entryCount} entries, more than the limit of ${limits.maxEntries}`);
      for await (const entry of zip.eachEntry()) {
        const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
        if (name.endsWith('/')) continue; // a folder entry: nothing to read
        const unsafe = yauzl.validateFileName(name);
        if (unsafe) skipped.push({ entry: name, reason: `refused: ${unsafe} (an entry's name must stay inside the archive)` });
        else if (entry.isEncrypted()) skipped.push({ entry: name, reason: 'encrypted' });
        else if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) skipped.push({ entry: name, reason: `compressed with method ${entry.compressionMethod}, which can't be read (only stored and deflate)` });
        else if (entry.uncompressedSize > limits.maxEntryBytes) skipped.push({ entry: name, reason: `claims ${mb(entry.uncompressedSize)} uncompressed, more than the ${mb(limits.maxEntryBytes)} an image may be` });
        else if (byName.has(name)) skipped.push({ entry: name, reason: 'a second entry of the same name' });
        else {
          declared += entry.uncompressedSize;
          if (declared > limits.maxTotalBytes) throw new ArchiveError(`${file} claims more than ${mb(limits.maxTotalBytes)} uncompressed in all, the budget for one archive (a zip bomb?)`);
          byName.set(name, entry);
          entries.push({ name, size: entry.uncompressedSize });
        }
      }
    } catch (err) {
      zip.close();
      if (err instanceof ArchiveError) throw err;
      throw new ArchiveError(`${file} is not a readable zip archive: ${(err as Error).message}`);
    }
    return { archive: new ZipArchive(file, zip, byName, limits), entries, skipped };
  }

  /** One entry's bytes, inflated in memory within its declared size and the archive's budget. */
  async read(name: string): Promise<Buffer> {
    const entry = this.byName.get(name);
    if (!entry) throw new ArchiveError(`${this.file} has no entry ${name} any more`);
    let stream: Readable;
    try {
      stream = await this.zip.openReadStreamPromise(entry);
    } catch (err) {
      throw new ArchiveError(`${this.file}: ${name} can't be read: ${(err as Error).message}`);
    }
    const chunks: Buffer[] = [];
    let length = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        length += chunk.length;
        this.inflated += chunk.length;
        // yauzl checks the declared size too; this holds whatever it declared.
        if (length > this.limits.maxEntryBytes) throw new ArchiveError(`${this.file}: ${name} inflates past ${mb(this.limits.maxEntryBytes)} (a zip bomb?)`);
        if (this.inflated > this.limits.maxTotalBytes) throw new ArchiveError(`${this.file} inflates past ${mb(this.limits.maxTotalBytes)} in all (a zip bomb?)`);
        chunks.push(chunk);
      }
    } catch (err) {
      stream.destroy();
      if (err instanceof ArchiveError) throw err;
      throw new ArchiveError(`${this.file}: ${name} is corrupt: ${(err as Error).message}`);
    }
    return Buffer.concat(chunks, length);
  }

  close(): void {
    this.zip.close();
  }
}
