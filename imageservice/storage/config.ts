import { envInt, envOptional, envString, serviceConfig, type ServiceConfig } from '../../shared/config.ts';
import type { S3Settings } from './s3Store.ts';

export const STORAGE_SERVICE = 'imagestorage';
export const STORAGE_DEFAULT_PORT = 3002;

/** Where the images live: files under DATA_DIR, or a bucket that any number of storage nodes share. */
export type BlobStoreSettings = { kind: 'fs' } | ({ kind: 's3' } & S3Settings);

/** The storage service's settings (see README, "The image pipeline"). */
export interface StorageOptions {
  config?: Partial<ServiceConfig>;
  /** Largest image accepted, in bytes (then 413). */
  maxImageBytes?: number;
  /** fsync each image before the rename (durable across power loss, not only crashes). */
  fsync?: boolean;
  /** BLOB_STORE: fs (the default) or s3. */
  blobStore?: BlobStoreSettings;
}

export const storageDefaults = { maxImageBytes: 50 * 2 ** 20, fsync: true, s3TimeoutMs: 10_000 };

const S3_VARIABLES = ['S3_ENDPOINT', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const;

/** BLOB_STORE and the S3_ variables; a missing one is a start-up failure that names it. */
export function blobStoreFromEnv(env: NodeJS.ProcessEnv = process.env): BlobStoreSettings {
  const kind = envString('BLOB_STORE', 'fs', env);
  if (kind === 'fs') return { kind };
  if (kind !== 's3') throw new Error(`BLOB_STORE must be fs or s3, got "${kind}"`);
  const missing = S3_VARIABLES.filter((name) => !envOptional(name, env));
  if (missing.length > 0) throw new Error(`BLOB_STORE=s3 needs ${missing.join(', ')}`);
  return {
    kind,
    endpoint: env.S3_ENDPOINT!,
    bucket: env.S3_BUCKET!,
    region: envString('S3_REGION', 'us-east-1', env),
    accessKeyId: env.S3_ACCESS_KEY_ID!,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY!,
    timeoutMs: envInt('S3_TIMEOUT_MS', storageDefaults.s3TimeoutMs, env),
    partBytes: envOptional('S3_PART_BYTES', env) === undefined ? undefined : envInt('S3_PART_BYTES', 0, env),
  };
}

/** The storage service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): StorageOptions {
  return {
    config: serviceConfig(STORAGE_SERVICE, STORAGE_DEFAULT_PORT, env),
    maxImageBytes: envInt('MAX_IMAGE_BYTES', storageDefaults.maxImageBytes, env),
    fsync: envString('STORAGE_FSYNC', String(storageDefaults.fsync), env) !== 'false',
    blobStore: blobStoreFromEnv(env),
  };
}
