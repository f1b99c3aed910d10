import { envInt, envString, serviceConfig, type ServiceConfig } from '../../shared/config.ts';

export const STORAGE_SERVICE = 'imagestorage';
export const STORAGE_DEFAULT_PORT = 3002;

/** The storage service's settings (see README, "The image pipeline"). */
export interface StorageOptions {
  config?: Partial<ServiceConfig>;
  /** Largest image accepted, in bytes (then 413). */
  maxImageBytes?: number;
  /** fsync each image before the rename (durable across power loss, not only crashes). */
  fsync?: boolean;
}

export const storageDefaults = { maxImageBytes: 50 * 2 ** 20, fsync: true };

/** The storage service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): StorageOptions {
  return {
    config: serviceConfig(STORAGE_SERVICE, STORAGE_DEFAULT_PORT, env),
    maxImageBytes: envInt('MAX_IMAGE_BYTES', storageDefaults.maxImageBytes, env),
    fsync: envString('STORAGE_FSYNC', String(storageDefaults.fsync), env) !== 'false',
  };
}
