import os from 'node:os';
import path from 'node:path';

/** The settings every service reads from the environment (flags in cmd/*.ts may override them). */
export interface ServiceConfig {
  port: number;
  host: string;
  advertiseUrl?: string;
  registryUrl: string;
  registryToken?: string;
  dataDir: string;
}

export const DEFAULT_REGISTRY_URL = 'http://127.0.0.1:3000';

/**
 * The one whole-number parser, for environment values, flags and ports alike: the number, or undefined
 * when the text is blank, not an integer, or outside [min, max].
 */
export function parseWholeNumber(text: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isInteger(value) && value >= min && value <= max ? value : undefined;
}

export function envInt(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = parseWholeNumber(raw);
  if (value === undefined) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

export function envString(name: string, fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  const raw = env[name];
  return raw === undefined || raw === '' ? fallback : raw;
}

export function envOptional(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

/** Reads PORT, HOST, ADVERTISE_URL, REGISTRY_URL, REGISTRY_TOKEN and DATA_DIR with a service's defaults. */
export function serviceConfig(service: string, defaultPort: number, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  return {
    port: envInt('PORT', defaultPort, env),
    host: envString('HOST', '127.0.0.1', env),
    advertiseUrl: envOptional('ADVERTISE_URL', env),
    registryUrl: envString('REGISTRY_URL', DEFAULT_REGISTRY_URL, env).replace(/\/+$/, ''),
    registryToken: envOptional('REGISTRY_TOKEN', env),
    dataDir: path.resolve(envString('DATA_DIR', path.join('data', service), env)),
  };
}

/** The URL others should use to reach a server bound to host:port. */
export function advertisedUrl(host: string, port: number, advertiseUrl?: string): string {
  if (advertiseUrl) return advertiseUrl.replace(/\/+$/, '');
  let name = host;
  if (host === '0.0.0.0' || host === '::') name = os.hostname();
  if (name.includes(':')) name = `[${name}]`;
  return `http://${name}:${port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
