import { envInt, serviceConfig, type ServiceConfig } from '../../shared/config.ts';

export const FRONTEND_SERVICE = 'imagefrontend';
export const FRONTEND_DEFAULT_PORT = 8080;

/** The image frontend's settings (see README, "The image pipeline"). */
export interface FrontendOptions {
  config?: Partial<ServiceConfig>;
  /** Largest file accepted by /submitTask, in bytes (then 413). */
  maxUploadBytes?: number;
  /** Largest .zip accepted for a job (POST /jobs/:id/archive), in bytes (then 413). */
  maxArchiveBytes?: number;
}

export const frontendDefaults = { maxUploadBytes: 50 * 2 ** 20, maxArchiveBytes: 2 ** 30 };

/** The frontend's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): FrontendOptions {
  return {
    config: serviceConfig(FRONTEND_SERVICE, FRONTEND_DEFAULT_PORT, env),
    maxUploadBytes: envInt('MAX_UPLOAD_BYTES', frontendDefaults.maxUploadBytes, env),
    maxArchiveBytes: envInt('MAX_ARCHIVE_BYTES', frontendDefaults.maxArchiveBytes, env),
  };
}
