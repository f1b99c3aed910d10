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
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { IMAGE_STATES, imageIdSchema, type ImageState } from '../protocol.ts';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the image is larger than the limit of ${limit} bytes`);
  }
}

export class ImageStore {
  private readonly tmpDir: string;

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

  /** Streams a body to its place, stopping (and removing the temporary file) past `limit` bytes. */
  async write(state: ImageState, id: string, body: Readable, limit: number): Promise<number> {
    const target = this.file(state, id);
    const tmp = path.join(this.tmpDir, `${id}.${randomBytes(6).toString('hex')}.tmp`);
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > limit) done(new BodyTooLargeError(limit));
        else done(null, chunk);
      },
    });
    const out = fs.createWriteStream(tmp, { flags: 'wx' });
    // The body is piped, not part of the pipeline: a refused body must not be destroyed with it
    // (that resets the connection before the 413 can be read); the server decides when to hang up.
    const interrupted = () => {
      if (!body.readableEnded) counter.destroy(new Error('the upload was interrupted'));
    };
    body.once('error', interrupted);
    body.once('close', interrupted);
    body.pipe(counter);
    try {
      await pipeline(counter, out);
      if (this.options.fsync) {
        const handle = await fsp.open(tmp, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await fsp.rename(tmp, target);
    } catch (err) {
      body.unpipe(counter);
      await fsp.rm(tmp, { force: true });
      throw err;
    } finally {
      body.off('error', interrupted);
      body.off('close', interrupted);
    }
    return bytes;
  }

  async stat(state: ImageState, id: string): Promise<fs.Stats | undefined> {
    try {
      return await fsp.stat(this.file(state, id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** An open read stream and its size, or undefined when there is no such image. */
  async read(state: ImageState, id: string): Promise<{ stream: fs.ReadStream; size: number } | undefined> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.file(state, id), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const { size } = await handle.stat();
    return { stream: handle.createReadStream(), size };
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

  async count(state: ImageState): Promise<number> {
    return (await fsp.readdir(path.join(this.dataDir, state))).filter((name) => name.endsWith('.png')).length;
  }
}
