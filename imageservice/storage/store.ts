/**
 * PNG files by state and id under one directory. Paths are built only from a validated state and
 * id; writes stream to a temporary file in the same file system, fsync, then rename, so a reader
 * (or a restart after a crash) sees the whole old image or the whole new one, never half.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { IMAGE_STATES, imageIdSchema, type ImageState } from '../protocol.ts';
import { syncDirectory } from '../../shared/files.ts';
import { GroupSync } from './groupSync.ts';
import { batches } from './body.ts';
import type { BlobStore } from './blobStore.ts';

/** Images up to this size are read in one call and sent in one write. */
const WHOLE_READ_BYTES = 16 << 20;

export class ImageStore implements BlobStore {
  private readonly tmpDir: string;
  private readonly directorySyncs = new Map<ImageState, GroupSync>();

  constructor(
    readonly dataDir: string,
    private readonly options: { fsync: boolean } = { fsync: true },
  ) {
    this.tmpDir = path.join(dataDir, 'tmp');
  }

  /** Creates the directories and drops temporary files a crash may have left. */
  async open(): Promise<void> {
    for (const state of IMAGE_STATES) await fsp.mkdir(path.join(this.dataDir, state), { recursive: true });
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
    await fsp.mkdir(this.tmpDir, { recursive: true });
  }

  /** The file for a state and id; both are checked again here, so no caller can build another path. */
  private file(state: ImageState, id: string): string {
    if (!IMAGE_STATES.includes(state) || !imageIdSchema.safeParse(id).success) throw new Error(`invalid image address ${state}/${id}`);
    return path.join(this.dataDir, state, `${id}.png`);
  }

  /**
   * Streams a body to its place, stopping (and removing the temporary file) past `limit` bytes.
   * The body's chunks are gathered and written with one writev per MiB or so, not one write (and
   * one thread-pool round trip) per 64 KiB chunk; the chunks themselves are never copied.
   */
  async write(state: ImageState, id: string, body: Readable, limit: number): Promise<number> {
    const target = this.file(state, id);
    const tmp = path.join(this.tmpDir, `${id}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await fsp.open(tmp, 'wx');
    let bytes = 0;
    try {
      try {
        for await (const batch of batches(body, limit)) {
          await handle.writev(batch.chunks);
          bytes += batch.bytes;
        }
        if (this.options.fsync) await handle.datasync();
      } finally {
        await handle.close();
      }
      await fsp.rename(tmp, target);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    // The rename is durable once the directory is: one fsync covers every rename made before it began.
    if (this.options.fsync) await this.directorySync(state).request();
    return bytes;
  }

  private directorySync(state: ImageState): GroupSync {
    let sync = this.directorySyncs.get(state);
    if (!sync) this.directorySyncs.set(state, (sync = new GroupSync(() => syncDirectory(path.join(this.dataDir, state)))));
    return sync;
  }

  async stat(state: ImageState, id: string): Promise<fs.Stats | undefined> {
    try {
      return await fsp.stat(this.file(state, id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * An image's bytes, or undefined when there is no such image: read whole (one read) up to
   * WHOLE_READ_BYTES, so the answer is one socket write; a larger one as a stream of 1 MiB reads.
   */
  async read(state: ImageState, id: string): Promise<{ bytes: Buffer; size: number } | { stream: fs.ReadStream; size: number } | undefined> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.file(state, id), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const { size } = await handle.stat();
    if (size > WHOLE_READ_BYTES) return { stream: handle.createReadStream({ highWaterMark: 1 << 20 }), size };
    try {
      const bytes = Buffer.allocUnsafe(size);
      const { bytesRead } = await handle.read(bytes, 0, size, 0);
      return { bytes: bytes.subarray(0, bytesRead), size: bytesRead };
    } finally {
      await handle.close();
    }
  }

  async remove(state: ImageState, id: string): Promise<boolean> {
    try {
      await fsp.unlink(this.file(state, id));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Images of a state last written before `beforeMs`, oldest first, at most `limit` (for the master's retention). */
  async listBefore(state: ImageState, beforeMs: number, limit: number): Promise<{ id: string; bytes: number; modifiedAt: string }[]> {
    const dir = path.join(this.dataDir, state);
    const found: { id: string; bytes: number; mtimeMs: number }[] = [];
    for (const name of await fsp.readdir(dir)) {
      const id = name.slice(0, -'.png'.length);
      if (!name.endsWith('.png') || !imageIdSchema.safeParse(id).success) continue;
      const stat = await fsp.stat(path.join(dir, name)).catch(() => undefined); // removed meanwhile
      if (stat && stat.mtimeMs < beforeMs) found.push({ id, bytes: stat.size, mtimeMs: stat.mtimeMs });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    return found.slice(0, limit).map(({ id, bytes, mtimeMs }) => ({ id, bytes, modifiedAt: new Date(mtimeMs).toISOString() }));
  }

  async count(state: ImageState): Promise<number> {
    return (await fsp.readdir(path.join(this.dataDir, state))).filter((name) => name.endsWith('.png')).length;
  }
}
