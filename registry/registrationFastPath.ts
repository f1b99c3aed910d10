import { registrationFields, type Registration } from './protocol.ts';
import type { UrlHosts } from './hostCheck.ts';

/** A registration the fast path decoded, with the host names of its URLs (parsed once, for the host rule). */
export interface DecodedRegistration {
  registration: Registration;
  hosts: UrlHosts;
}

/**
 * The registration nearly every client sends, decoded without zod: at thousands a second the schema's
 * generic machinery was the largest piece of the registry's own CPU per registration. It accepts only
 * bodies that registrationSchema accepts and gives the same result (registrationFastPath.test.ts holds the
 * two to it); anything unusual (metadata, a value that needs trimming, a duplicate field, any error) answers
 * undefined, and the schema decides and words the error.
 */
export function fastRegistration(body: unknown): DecodedRegistration | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const fields: Partial<Record<(typeof registrationFields)[number], unknown>> = {};
  for (const key in body) {
    if (!Object.hasOwn(body, key)) continue;
    const name = CANONICAL.get(key.toLowerCase());
    if (name === undefined) continue; // the schema strips unknown keys
    if (name in fields) return undefined; // two spellings of one field: the schema's rule decides
    fields[name] = (body as Record<string, unknown>)[key];
  }
  const { serviceName, serviceURL, requiredServices, serviceUpdateURL, heartbeatURL, instanceId, metadata, ttlSeconds } = fields;
  const serviceHost = isServiceName(serviceName) && metadata === undefined ? hostOf(serviceURL) : undefined;
  if (serviceHost === undefined) return undefined;
  let required: string[] = [];
  if (requiredServices !== undefined && requiredServices !== null) {
    if (!Array.isArray(requiredServices) || requiredServices.length > 64 || !requiredServices.every(isServiceName)) return undefined;
    required = [...new Set(requiredServices as string[])];
  }
  const updateURL = optionalUrl(serviceUpdateURL);
  const checkURL = optionalUrl(heartbeatURL);
  if (updateURL === false || checkURL === false) return undefined;
  const hosts: UrlHosts = { serviceURL: serviceHost, heartbeatURL: checkURL?.host, serviceUpdateURL: updateURL?.host };
  if (instanceId !== undefined && (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId))) return undefined;
  if (ttlSeconds !== undefined && !(typeof ttlSeconds === 'number' && ttlSeconds > 0 && ttlSeconds <= 3600)) return undefined;
  // The schema's cross-field rules: an error either way, so the schema words it.
  if (!checkURL && ttlSeconds === undefined) return undefined;
  if (required.length > 0 && !updateURL && ttlSeconds === undefined) return undefined;
  const registration: Registration = {
    serviceName: serviceName as string,
    serviceURL: serviceURL as string,
    requiredServices: required,
    serviceUpdateURL: updateURL?.url,
    heartbeatURL: checkURL?.url,
    ...(instanceId !== undefined ? { instanceId: instanceId as string } : {}),
    ...(ttlSeconds !== undefined ? { ttlSeconds: ttlSeconds as number } : {}),
  };
  return { registration, hosts };
}

const CANONICAL = new Map(registrationFields.map((name) => [name.toLowerCase(), name]));
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** As protocol.ts's serviceName, for a value that needs no trimming. */
function isServiceName(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 64 && SERVICE_NAME.test(value);
}

/** The host name of what shared/validate.ts's httpUrl accepts (for a value that needs no trimming), else undefined. */
function hostOf(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048 || value.length === 0 || value.trim() !== value) return undefined;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' ? url.hostname : undefined;
  } catch {
    return undefined;
  }
}

/** An optional URL field: the URL and its host, undefined when absent, null or empty, or false when it is not one. */
function optionalUrl(value: unknown): { url: string; host: string } | undefined | false {
  if (value === undefined || value === null || value === '') return undefined;
  const host = hostOf(value);
  return host === undefined ? false : { url: value as string, host };
}
