/**
 * Where the storage service keeps PNG bytes by state and id: local files (store.ts, BLOB_STORE=fs, the default)
 * or an S3 bucket (s3Store.ts, BLOB_STORE=s3). Both refuse an invalid state or id themselves, stop a body past its
 * limit with BodyTooLargeError (leaving nothing behind), and resolve a write only once the image is durable.
 */
import type { Readable } from 'node:stream';
import type { ImageState } from '../protocol.ts';

export type StoredImage = { bytes: Buffer; size: number } | { stream: Readable; size: number };

export interface ListedImage {
  id: string;
  bytes: number;
  modifiedAt: string;
}

export interface BlobStore {
  /** Prepares the store (folders, or the bucket); safe when several nodes open the same store at once. */
  open(): Promise<void>;
  /** Streams a body to its place and resolves with its size once it is durable. */
  write(state: ImageState, id: string, body: Readable, limit: number): Promise<number>;
  stat(state: ImageState, id: string): Promise<{ size: number } | undefined>;
  read(state: ImageState, id: string): Promise<StoredImage | undefined>;
  /** False when there was no such image. */
  remove(state: ImageState, id: string): Promise<boolean>;
  /** Images of a state last written before `beforeMs`, oldest first, at most `limit` (for the master's retention). */
  listBefore(state: ImageState, beforeMs: number, limit: number): Promise<ListedImage[]>;
  close?(): Promise<void>;
}

/** The store's engine did not answer (refused, timed out, or said it is unavailable): try again later. */
export class BlobStoreUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'BlobStoreUnavailableError';
  }
}

/** The store's engine answered with an error that is neither "missing" nor "unavailable" (credentials, a bad bucket). */
export class BlobStoreError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'BlobStoreError';
  }
}
