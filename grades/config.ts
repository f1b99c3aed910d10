import type { Logger } from 'winston';
import { serviceConfig, type ServiceConfig } from '../shared/config.ts';

export const GRADES_SERVICE = 'grades';
export const GRADES_DEFAULT_PORT = 6000;

/** The grades service's settings: only the common ones (port, host, registry, DATA_DIR for its database). */
export interface GradesOptions {
  config?: Partial<ServiceConfig>;
  logger?: Logger;
}

/** The grades service's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): GradesOptions {
  return { config: serviceConfig(GRADES_SERVICE, GRADES_DEFAULT_PORT, env) };
}
