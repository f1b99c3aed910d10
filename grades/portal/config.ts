import type { Logger } from 'winston';
import { envInt, serviceConfig, type ServiceConfig } from '../../shared/config.ts';

export const PORTAL_SERVICE = 'portal';
export const PORTAL_DEFAULT_PORT = 5000;

/** The teacher portal's settings (see README). */
export interface PortalOptions {
  config?: Partial<ServiceConfig>;
  /** Timeout of one call to grades (GRADES_TIMEOUT_MS). */
  gradesTimeoutMs?: number;
  logger?: Logger;
}

export const portalDefaults = {
  /** How long a page waits for grades before it says so (the failover retries fit inside). */
  gradesTimeoutMs: 5000,
};

/** The portal's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): PortalOptions {
  return {
    config: serviceConfig(PORTAL_SERVICE, PORTAL_DEFAULT_PORT, env),
    gradesTimeoutMs: envInt('GRADES_TIMEOUT_MS', portalDefaults.gradesTimeoutMs, env),
  };
}
