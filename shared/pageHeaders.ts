/**
 * Security headers on every answer (helmet's, worked out once): a Content-Security-Policy, nosniff, no
 * framing, and a referrer policy. Pages put `nonce="${cspNonce(res)}"` on their inline <script> and
 * <style>; that call makes the response's nonce and puts it in the policy (other answers have none).
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { RequestHandler, Response } from 'express';
import helmet from 'helmet';

// No nonce source when the response has none (see `plain` below).
const nonceOf = (_req: http.IncomingMessage, res: http.ServerResponse) => {
  const nonce = (res as Response).locals.cspNonce as string | undefined;
  return nonce === undefined ? '' : `'nonce-${nonce}'`;
};

const securityHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      'default-src': ["'self'"],
      'script-src': ["'self'", nonceOf],
      'script-src-attr': ["'none'"],
      'style-src': ["'self'", nonceOf],
      // blob: for the upload page's before-preview of a local file.
      'img-src': ["'self'", 'data:', 'blob:'],
      'connect-src': ["'self'"],
      'object-src': ["'none'"],
      'base-uri': ["'self'"],
      'form-action': ["'self'"],
      'frame-ancestors': ["'none'"],
      // No upgrade-insecure-requests: the services speak plain http, and an upgraded fetch would fail.
    },
  },
  xFrameOptions: { action: 'deny' },
  // Not helmet's no-referrer: with it a browser sends "Origin: null" on our own forms, which refuseCrossSite refuses.
  referrerPolicy: { policy: 'same-origin' },
  // The services speak plain http; HSTS belongs to the TLS proxy in front of them, if any.
  strictTransportSecurity: false,
});

/** A stand-in nonce, replaced by the response's own in cspNonce. */
const NONCE_MARK = 'NONCE-MARK';

/** helmet's headers for a policy with `nonce` (or none), worked out once: per request they are the same strings. */
function helmetHeaders(nonce: string | undefined): { set: [string, string][]; removed: string[] } {
  const set: [string, string][] = [];
  const removed: string[] = [];
  const res = {
    locals: { cspNonce: nonce },
    setHeader: (name: string, value: string) => void set.push([name, String(value).replace(/ +;/g, ';')]),
    removeHeader: (name: string) => void removed.push(name),
  } as unknown as http.ServerResponse;
  securityHeaders({} as http.IncomingMessage, res, () => undefined);
  return { set, removed };
}

// Answers that are not pages (JSON, errors, images) need no nonce: they run no inline script, so their policy has none.
const plain = helmetHeaders(undefined);
const pagePolicy = helmetHeaders(NONCE_MARK).set.find(([name]) => name.toLowerCase() === 'content-security-policy')!;

/** The nonce of this response's inline scripts and styles: made on first use, and the policy sent is then the one with it. */
export function cspNonce(res: Response): string {
  let nonce = res.locals.cspNonce as string | undefined;
  if (nonce === undefined) {
    nonce = res.locals.cspNonce = randomBytes(16).toString('base64');
    res.setHeader(pagePolicy[0], pagePolicy[1].replaceAll(NONCE_MARK, nonce));
  }
  return nonce;
}

/** Mount before any route: every answer, pages, JSON and errors alike, gets the headers. */
export const pageHeaders: RequestHandler = (_req, res, next) => {
  for (const name of plain.removed) res.removeHeader(name);
  for (const [name, value] of plain.set) res.setHeader(name, value);
  next();
};
