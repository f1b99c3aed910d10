/**
 * PNG objects by state and id in one S3 bucket (BLOB_STORE=s3), under `<state>/<id>.png`, path-style, so any
 * number of storage nodes serve the same images and none keeps anything on its own disk. Uploads stream: a small
 * image is one PUT, a large one a multipart upload of PART_BYTES parts, at most QUEUE_SIZE in memory at once;
 * past the limit the multipart upload is aborted, so nothing is left behind. Every call is bounded in time; an
 * S3 that is refused, slow or failing is a BlobStoreUnavailableError (the server's 503), never a crash.
 */
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { IMAGE_STATES, imageIdSchema, type ImageState } from '../protocol.ts';
import { BlobStoreError, BlobStoreUnavailableError, type BlobStore, type ListedImage, type StoredImage } from './blobStore.ts';
import { batches, BodyInterruptedError, BodyTooLargeError } from './body.ts';

export interface S3Settings {
  endpoint: string;
  bucket: string;
  /** Must equal the server's location (Swift's s3api `location`), or every signature is refused. */
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The bound on each S3 call (and on a stalled transfer), in ms. */
  timeoutMs: number;
  /** Multipart part size; S3's minimum is 5 MiB. */
  partBytes?: number;
}

const MIN_PART_BYTES = 5 * 2 ** 20;
/** Parts uploaded at once: what a large upload holds in memory is about QUEUE_SIZE + 1 parts. */
const QUEUE_SIZE = 2;
/** Connection failures that mean "S3 is not there now", as opposed to an answer. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/** What a refusal usually means, for the line a person reads when the node won't start. */
const HINTS: Record<number, string> = {
  400: '; is S3_REGION the region the server signs for?',
  403: '; check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY',
};

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

export class S3ImageStore implements BlobStore {
  private readonly client: S3Client;
  private readonly partBytes: number;
  /** Set once the bucket is known to exist; a failed check is forgotten, so the next write checks again. */
  private bucketReady?: Promise<void>;

  constructor(private readonly settings: S3Settings) {
    // The SDK is pinned to a version that runs on Node 20; its notice is about later versions, and would reach the logs.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.partBytes = Math.max(MIN_PART_BYTES, settings.partBytes ?? MIN_PART_BYTES);
    this.client = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region,
      forcePathStyle: true,
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
      // S3-compatible servers (Swift's s3api) take neither aws-chunked uploads nor the SDK's default checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 2,
      requestHandler: { connectionTimeout: Math.min(settings.timeoutMs, 2000), requestTimeout: settings.timeoutMs },
    });
  }

  get bucket(): string {
    return this.settings.bucket;
  }

  /** The object key for a state and id; both are checked again here, so no caller can name another object. */
  private key(state: ImageState, id: string): string {
    if (!IMAGE_STATES.includes(state) || !imageIdSchema.safeParse(id).success) throw new Error(`invalid image address ${state}/${id}`);
    return `${state}/${id}.png`;
  }

  /** One S3 call under the time bound; a 404 stays as it is (callers turn it into "missing"), the rest become ours. */
  private async call<T>(what: string, send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await send(AbortSignal.timeout(this.settings.timeoutMs));
    } catch (err) {
      if (isNotFound(err)) throw err;
      throw this.failure(what, err);
    }
  }

  private failure(what: string, err: unknown): Error {
    const status = statusOf(err);
    const { name, code, message } = err as { name?: string; code?: string; message?: string };
    const where = `S3 at ${this.settings.endpoint}`;
    if ((status !== undefined && status >= 500) || name === 'TimeoutError' || name === 'AbortError' || (code && UNREACHABLE.has(code))) {
      return new BlobStoreUnavailableError(`${where} is unavailable (${what}: ${status ?? code ?? name})`, err);
    }
    if (err instanceof S3ServiceException) {
      // A HEAD's error has no body to name it: the status and a hint say more than "Unknown".
      const named = err.name === 'Unknown' ? `HTTP ${status}` : `${err.name} (${status})`;
      return new BlobStoreError(`${where} refused ${what} on bucket ${this.bucket}: ${named}${HINTS[status ?? 0] ?? ''}`, err);
    }
    return err instanceof Error ? err : new Error(message ?? String(err));
  }

  /** Creates the bucket if it is missing; another node creating it at the same moment is as good. */
  async open(): Promise<void> {
    await this.ensureBucket();
  }

  private ensureBucket(): Promise<void> {
    this.bucketReady ??= this.createBucketIfMissing().catch((err: unknown) => {
      this.bucketReady = undefined;
      throw err;
    });
    return this.bucketReady;
  }

  private async createBucketIfMissing(): Promise<void> {
    const Bucket = this.bucket;
    try {
      await this.call('HeadBucket', (abortSignal) => this.client.send(new HeadBucketCommand({ Bucket }), { abortSignal }));
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await this.call('CreateBucket', (abortSignal) => this.client.send(new CreateBucketCommand({ Bucket }), { abortSignal }));
    } catch (err) {
      const raced = (err as Error).cause instanceof S3ServiceException && ['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(((err as Error).cause as Error).name);
      if (!raced) throw err;
      // Made by another node meanwhile: ours if we can read it.
      await this.call('HeadBucket', (abortSignal) => this.client.send(new HeadBucketCommand({ Bucket }), { abortSignal }));
    }
  }

  async write(state: ImageState, id: string, body: Readable, limit: number): Promise<number> {
    const Key = this.key(state, id);
    await this.ensureBucket();
    let bytes = 0;
    // The body's own chunks, counted and stopped past the limit; the request itself is never destroyed (see batches).
    const source = Readable.from(
      (async function* () {
        for await (const batch of batches(body, limit)) {
          bytes += batch.bytes;
          yield* batch.chunks;
        }
      })(),
    );
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: source, ContentType: 'image/png' },
      partSize: this.partBytes,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      source.destroy();
      if (err instanceof BodyTooLargeError || err instanceof BodyInterruptedError) throw err;
      throw this.failure('upload', err);
    }
    return bytes;
  }

  async stat(state: ImageState, id: string): Promise<{ size: number } | undefined> {
    try {
      const head = await this.call('HeadObject', (abortSignal) => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(state, id) }), { abortSignal }));
      return { size: head.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The image as a stream from S3; the time bound covers the answer's start, then a stalled stream times out. */
  async read(state: ImageState, id: string): Promise<StoredImage | undefined> {
    const Key = this.key(state, id);
    const started = new AbortController();
    const timer = setTimeout(() => started.abort(Object.assign(new Error('S3 did not answer in time'), { name: 'TimeoutError' })), this.settings.timeoutMs);
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: started.signal });
      return { stream: object.Body as Readable, size: object.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.failure('GetObject', err);
    } finally {
      clearTimeout(timer);
    }
  }

  async remove(state: ImageState, id: string): Promise<boolean> {
    // S3 answers a delete of a missing key with 204 too: ask first, so a missing image is a 404 as on disk.
    if (!(await this.stat(state, id))) return false;
    await this.call('DeleteObject', (abortSignal) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(state, id) }), { abortSignal }));
    return true;
  }

  async listBefore(state: ImageState, beforeMs: number, limit: number): Promise<ListedImage[]> {
    const prefix = this.key(state, 'x').slice(0, -'x.png'.length);
    const found: { id: string; bytes: number; modifiedMs: number }[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.call('ListObjectsV2', (abortSignal) =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken, MaxKeys: 1000 }), { abortSignal }),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key ?? '';
        const id = key.slice(prefix.length, -'.png'.length);
        if (!key.endsWith('.png') || !imageIdSchema.safeParse(id).success || !object.LastModified) continue;
        if (object.LastModified.getTime() < beforeMs) found.push({ id, bytes: object.Size ?? 0, modifiedMs: object.LastModified.getTime() });
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    found.sort((a, b) => a.modifiedMs - b.modifiedMs);
    return found.slice(0, limit).map(({ id, bytes, modifiedMs }) => ({ id, bytes, modifiedAt: new Date(modifiedMs).toISOString() }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
