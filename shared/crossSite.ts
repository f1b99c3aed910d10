/**
 * Cross-site request refusal: a page on another site may make a browser send a form or a no-cors
 * fetch to any of our routes, with the user's network position behind it. Browsers say where a
 * request comes from (Sec-Fetch-Site, Origin); programs (axios, undici, curl, the Go services) send
 * neither, so they pass untouched.
 */
import type http from 'node:http';
import type { RequestHandler } from 'express';
import { HttpError } from './errors.ts';

/** Methods that change state; a browser sends the others without any side effect we allow. */
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function originMatchesHost(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || origin === 'null' || !host) return false;
  try {
    // The host only: behind a TLS proxy the scheme we see is not the one the browser used.
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/** Why a request that changes state must be refused as cross-site, or undefined to let it through. */
export function crossSiteRefusal(req: http.IncomingMessage): HttpError | undefined {
  if (!STATE_CHANGING.has(req.method ?? '')) return undefined;
  const site = header(req, 'sec-fetch-site');
  const origin = header(req, 'origin');
  const host = header(req, 'host');
  if (site !== undefined) {
    // "none" is the user's own doing (typed address, bookmark); same-origin is our own page.
    if (site === 'same-origin' || site === 'none') return undefined;
    if (originMatchesHost(origin, host)) return undefined;
    return refusal(`Sec-Fetch-Site: ${site}, Origin: ${origin ?? '(none)'}`);
  }
  // Browsers too old for Sec-Fetch-Site still send Origin on every POST; a request with neither is a program.
  if (origin === undefined) return undefined;
  if (originMatchesHost(origin, host)) return undefined;
  return refusal(`Origin: ${origin}`);
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

function refusal(seen: string): HttpError {
  return new HttpError(
    403,
    'cross_site',
    `a state-changing request from another site is refused (${seen.slice(0, 200)}); use this service's own pages, or call it from a program without an Origin header`,
  );
}

/** Express form of crossSiteRefusal, for every route of a service (createApp mounts it). */
export const refuseCrossSite: RequestHandler = (req, _res, next) => {
  next(crossSiteRefusal(req));
};
