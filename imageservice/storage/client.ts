/** The typed client of the storage service, over an axios instance (svc.client('imagestorage') or a fixed URL). */
import axios, { type AxiosInstance } from 'axios';
import type { Readable } from 'node:stream';
import { classifyUpstream } from '../../shared/apiError.ts';
import type { ImageState } from '../protocol.ts';

/** Storage answered 404: it has no such image (what a head, a delete or a get that failed came to). */
export function isMissing(err: unknown): boolean {
  const failure = classifyUpstream(err);
  return failure?.kind === 'answered' && failure.status === 404;
}

export class StorageClient {
  constructor(
    private readonly http: AxiosInstance,
    private readonly timeoutMs = 60_000,
  ) {}

  static fromUrl(url: string, timeoutMs?: number): StorageClient {
    return new StorageClient(axios.create({ baseURL: url, timeout: timeoutMs ?? 60_000 }), timeoutMs);
  }

  async put(state: ImageState, id: string, png: Uint8Array): Promise<void> {
    // A Buffer view, not a bare Uint8Array: axios would send a Uint8Array's whole underlying ArrayBuffer.
    await this.http.put(`/images/${state}/${encodeURIComponent(id)}`, asBuffer(png), {
      headers: { 'content-type': 'image/png' },
      timeout: this.timeoutMs,
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
    });
  }

  /**
   * Stores a body as it is produced. It goes chunked, without a Content-Length: only the stream's end ends
   * it, so a stream destroyed at its last byte still stores nothing. Aborting `signal` (the caller does when
   * it destroys the stream) abandons the write at any stage. A stream cannot be sent twice, so this call
   * never fails over to another instance; a caller that holds the bytes can put() them after a connection error.
   */
  async putStream(state: ImageState, id: string, body: Readable, signal?: AbortSignal): Promise<void> {
    await this.http.put(`/images/${state}/${encodeURIComponent(id)}`, body, {
      signal,
      headers: { 'content-type': 'image/png' },
      timeout: this.timeoutMs,
      // -1: no limit, and no counting stage between the stream and the socket.
      maxBodyLength: -1,
      maxContentLength: Infinity,
    });
  }

  async get(state: ImageState, id: string): Promise<Buffer> {
    const res = await this.http.get<ArrayBuffer>(`/images/${state}/${encodeURIComponent(id)}`, {
      responseType: 'arraybuffer',
      timeout: this.timeoutMs,
      maxContentLength: Infinity,
    });
    // axios hands Node a Buffer for 'arraybuffer': copying it again would only cost a pass over the image.
    return Buffer.isBuffer(res.data) ? res.data : Buffer.from(res.data);
  }

  /** The image's size, or undefined when storage has no such image. */
  async head(state: ImageState, id: string): Promise<number | undefined> {
    try {
      const res = await this.http.head(`/images/${state}/${encodeURIComponent(id)}`, { timeout: this.timeoutMs });
      return Number(res.headers['content-length']);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Images of a state last written before `beforeMs` (ms since epoch), oldest first. */
  async listBefore(state: ImageState, beforeMs: number, limit = 1000): Promise<{ id: string; bytes: number; modifiedAt: string }[]> {
    const res = await this.http.get(`/images/${state}`, { params: { before: Math.floor(beforeMs), limit }, timeout: this.timeoutMs });
    return res.data.images;
  }

  /** Deletes an image; false when there was none. */
  async delete(state: ImageState, id: string): Promise<boolean> {
    try {
      await this.http.delete(`/images/${state}/${encodeURIComponent(id)}`, { timeout: this.timeoutMs });
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }
}

/** The same bytes as a Buffer (axios sends a bare Uint8Array's whole ArrayBuffer, not just the view). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
