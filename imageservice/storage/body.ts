/** An upload's body read in batches under a size limit, for every blob store. */
import type { Readable } from 'node:stream';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the image is larger than the limit of ${limit} bytes`);
  }
}

/** The body stopped before its end: the client hung up or gave up on it (a master abandoning a refused upload). */
export class BodyInterruptedError extends Error {
  constructor() {
    super('the upload was interrupted before its end');
  }
}

/** Writes are gathered into batches of about this many bytes. */
const BATCH_BYTES = 1 << 20;

/**
 * A body's chunks in batches of about BATCH_BYTES (the last one smaller), read as they arrive;
 * past `limit` bytes it throws BodyTooLargeError. A body that ends early (the client hung up) throws BodyInterruptedError.
 */
export async function* batches(body: Readable, limit: number): AsyncGenerator<{ chunks: Buffer[]; bytes: number }> {
  let chunks: Buffer[] = [];
  let bytes = 0;
  let total = 0;
  const ended = new Promise<void>((resolve, reject) => {
    body.once('end', resolve);
    body.once('error', () => reject(new BodyInterruptedError()));
    body.once('close', () => (body.readableEnded ? resolve() : reject(new BodyInterruptedError())));
  });
  ended.catch(() => undefined);
  // Read with 'readable' events rather than async iteration: a refused body must not be destroyed
  // (that resets the connection before the 413 can be read); the server decides when to hang up.
  for (;;) {
    let chunk: Buffer | null;
    while ((chunk = body.read()) !== null) {
      total += chunk.length;
      if (total > limit) throw new BodyTooLargeError(limit);
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes >= BATCH_BYTES) {
        yield { chunks, bytes };
        chunks = [];
        bytes = 0;
      }
    }
    if (body.readableEnded) break;
    const more = await Promise.race([new Promise<boolean>((resolve) => body.once('readable', () => resolve(true))), ended.then(() => false)]);
    if (!more && body.readableLength === 0) break;
  }
  await ended;
  if (bytes > 0) yield { chunks, bytes };
}
