/**
 * Reads an uploaded PNG body with its checks up front: the size on Content-Length before a byte
 * is read, the signature and header as soon as 33 bytes are in (a non-PNG or a huge image is
 * refused then, without reading the rest), then the chunk structure as the rest arrives. Once the
 * header has passed, the body can be forwarded as it arrives (the master streams it into storage).
 */
import type { Request } from 'express';
import { PassThrough, type Writable } from 'node:stream';
import type { Logger } from '../../shared/logger.ts';
import { classifyUpstream } from '../../shared/apiError.ts';
import type { StorageClient } from '../storage/client.ts';
import { HttpError } from '../../shared/errors.ts';
import { discardBody } from '../discard.ts';
import { PNG_HEADER_BYTES, PNG_SIGNATURE, PngError, PngStructureCheck, assertPixelLimit, checkPngStructure, readPngHeader, type PngHeader } from '../png.ts';

export interface UploadLimits {
  maxBytes: number;
  maxPixels: number;
}

function toHttp(err: PngError): HttpError {
  return new HttpError(err.status, err.code, err.message);
}

/**
 * The upload, checked. With `forward`, once the header has passed, every byte (those already in, then each
 * piece as it arrives) is also written to the stream it returns, which ends when the whole body has passed
 * its checks and is destroyed when the upload is refused or cut short: it never ends on a body that fails.
 * A forward that reads slowly pauses the upload. The whole body is still gathered, for the caller's answer.
 */
export function readPngUpload(req: Request, limits: UploadLimits, forward?: (header: PngHeader) => Writable): Promise<{ png: Buffer; header: PngHeader }> {
  const declared = Number(req.get('content-length') ?? NaN);
  if (declared > limits.maxBytes) {
    discardBody(req, Math.min(declared, 2 * limits.maxBytes));
    return Promise.reject(new HttpError(413, 'payload_too_large', `the upload is ${declared} bytes, more than the limit of ${limits.maxBytes} bytes`));
  }
  // With a declared length the body is copied into one buffer as it arrives: no socket chunk outlives
  // its event (chunks held for the whole upload reach the old generation, and only a full GC frees them).
  // Its pages are committed by the writes, so a client that declares much and sends little costs little.
  const whole = Number.isSafeInteger(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : undefined;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let checked = false;
    let settled = false;
    /** The chunk walk, from the moment the header has passed; and where the body goes on to. */
    let structure: PngStructureCheck | undefined;
    let header: PngHeader | undefined;
    let sink: Writable | undefined;
    const refuse = (err: HttpError) => {
      if (settled) return;
      settled = true;
      sink?.destroy(new Error(`the upload was refused: ${err.message}`));
      discardBody(req, limits.maxBytes);
      reject(err);
    };
    const refusePng = (err: unknown) => refuse(err instanceof PngError ? toHttp(err) : new HttpError(400, 'invalid_png', (err as Error).message));
    const head = () => (whole ? whole.subarray(0, received) : Buffer.concat(chunks));
    const pass = (piece: Buffer) => {
      structure?.push(piece);
      if (sink && !sink.write(piece)) {
        req.pause();
        sink.once('drain', () => req.resume());
      }
    };
    const checkHeader = () => {
      checked = true;
      try {
        const bytes = head();
        header = readPngHeader(bytes.subarray(0, PNG_HEADER_BYTES));
        assertPixelLimit(header, limits.maxPixels);
        structure = new PngStructureCheck();
        sink = forward?.(header);
        pass(bytes);
      } catch (err) {
        refusePng(err);
      }
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (received + chunk.length > limits.maxBytes) {
        refuse(new HttpError(413, 'payload_too_large', `the upload is larger than the limit of ${limits.maxBytes} bytes`));
        return;
      }
      // What goes on is the copy in `whole` when there is one: the socket's chunk is not held past this event.
      let piece = chunk;
      if (whole) {
        // node's parser gives no more than Content-Length; this only guards the copy.
        if (received + chunk.length > whole.length) return refuse(new HttpError(400, 'bad_length', 'the body is longer than its Content-Length'));
        chunk.copy(whole, received);
        piece = whole.subarray(received, received + chunk.length);
      } else chunks.push(chunk);
      received += chunk.length;
      if (checked) {
        try {
          pass(piece);
        } catch (err) {
          refusePng(err);
        }
      // A byte that already breaks the signature is enough to say "not a PNG".
      } else if (received >= PNG_HEADER_BYTES || !head().subarray(0, 8).equals(PNG_SIGNATURE.subarray(0, Math.min(received, 8)))) {
        checkHeader();
      }
    });
    req.on('end', () => {
      if (settled) return;
      try {
        const png = whole ? whole.subarray(0, received) : Buffer.concat(chunks, received);
        if (received === 0) throw new PngError(415, 'not_png', 'the body is empty: send the PNG image as the request body');
        // A body shorter than its header was never walked: the whole-body check says what is wrong with it.
        if (!structure || !header) header = checkPngStructure(png);
        else structure.end();
        settled = true;
        sink?.end();
        resolve({ png, header });
      } catch (err) {
        if (err instanceof PngError) return refuse(toHttp(err));
        settled = true;
        sink?.destroy(err as Error);
        reject(err);
      }
    });
    const interrupted = (why: string) => {
      if (settled) return;
      settled = true;
      sink?.destroy(new Error(`the upload was interrupted: ${why}`));
      reject(new HttpError(400, 'request_aborted', `the upload was interrupted: ${why}`));
    };
    req.on('error', (err) => interrupted(err.message));
    req.on('close', () => {
      if (!req.complete) interrupted('the client hung up');
    });
  });
}

/**
 * The upload, checked, and streamed into storage's `working` under `imageKey` as it arrives, once its header
 * has passed: storage writes while the rest comes in. A refused upload abandons the write (storage keeps
 * nothing). A node that refused the stream, went away or went quiet mid-way never answered: the upload is
 * whole here by then, so it is put again, to any node that is up. An answer from storage (a refusal, or away
 * for now) is the answer.
 */
export async function storePngUpload(req: Request, limits: UploadLimits, storage: StorageClient, imageKey: string, log: Logger): Promise<{ png: Buffer; header: PngHeader }> {
  let streamed: Promise<void> | undefined;
  const upload = await readPngUpload(req, limits, () => {
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    // Destroyed (the upload refused or cut short): the request into storage is abandoned at whatever stage it is.
    const abandon = new AbortController();
    body.on('error', () => abandon.abort());
    streamed = storage.putStream('working', imageKey, body, abandon.signal);
    streamed.catch(() => undefined); // awaited below; a refused upload abandons it
    return body;
  });
  // A body that passed its checks had its header pass first, so the stream was opened.
  await streamed!.catch(async (err: unknown) => {
    const kind = classifyUpstream(err)?.kind;
    if (kind !== 'refused' && kind !== 'lost' && kind !== 'timeout') throw err;
    log.info(`the upload's stream into storage failed (${(err as Error).message}); storing it again`);
    await storage.put('working', imageKey, upload.png);
  });
  return upload;
}
