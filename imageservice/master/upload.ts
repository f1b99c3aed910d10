/**
 * Reads an uploaded PNG body with its checks up front: the size on Content-Length before a byte
 * is read, the signature and header as soon as 33 bytes are in (a non-PNG or a huge image is
 * refused then, without reading the rest), then the whole chunk structure.
 */
import type { Request } from 'express';
import { HttpError } from '../../shared/errors.ts';
import { discardBody } from '../discard.ts';
import { PNG_HEADER_BYTES, PNG_SIGNATURE, PngError, assertPixelLimit, checkPngStructure, readPngHeader, type PngHeader } from '../png.ts';

export interface UploadLimits {
  maxBytes: number;
  maxPixels: number;
}

function toHttp(err: PngError): HttpError {
  return new HttpError(err.status, err.code, err.message);
}

export function readPngUpload(req: Request, limits: UploadLimits): Promise<{ png: Buffer; header: PngHeader }> {
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
    const refuse = (err: HttpError) => {
      if (settled) return;
      settled = true;
      discardBody(req, limits.maxBytes);
      reject(err);
    };
    const head = () => (whole ? whole.subarray(0, received) : Buffer.concat(chunks));
    const checkHeader = () => {
      checked = true;
      try {
        assertPixelLimit(readPngHeader(head().subarray(0, PNG_HEADER_BYTES)), limits.maxPixels);
      } catch (err) {
        if (err instanceof PngError) refuse(toHttp(err));
        else refuse(new HttpError(400, 'invalid_png', (err as Error).message));
      }
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (received + chunk.length > limits.maxBytes) {
        refuse(new HttpError(413, 'payload_too_large', `the upload is larger than the limit of ${limits.maxBytes} bytes`));
        return;
      }
      if (whole) {
        // node's parser gives no more than Content-Length; this only guards the copy.
        if (received + chunk.length > whole.length) return refuse(new HttpError(400, 'bad_length', 'the body is longer than its Content-Length'));
        chunk.copy(whole, received);
      } else chunks.push(chunk);
      received += chunk.length;
      // A byte that already breaks the signature is enough to say "not a PNG".
      if (!checked && (received >= PNG_HEADER_BYTES || !head().subarray(0, 8).equals(PNG_SIGNATURE.subarray(0, Math.min(received, 8))))) {
        checkHeader();
      }
    });
    req.on('end', () => {
      if (settled) return;
      try {
        const png = whole ? whole.subarray(0, received) : Buffer.concat(chunks, received);
        if (received === 0) throw new PngError(415, 'not_png', 'the body is empty: send the PNG image as the request body');
        const header = checkPngStructure(png);
        assertPixelLimit(header, limits.maxPixels);
        settled = true;
        resolve({ png, header });
      } catch (err) {
        settled = true;
        reject(err instanceof PngError ? toHttp(err) : err);
      }
    });
    const interrupted = (why: string) => {
      if (settled) return;
      settled = true;
      reject(new HttpError(400, 'request_aborted', `the upload was interrupted: ${why}`));
    };
    req.on('error', (err) => interrupted(err.message));
    req.on('close', () => {
      if (!req.complete) interrupted('the client hung up');
    });
  });
}
