/**
 * Security headers on every answer (helmet): a Content-Security-Policy whose scripts and styles must
 * carry this response's nonce, nosniff, no framing, and a referrer policy. Pages put
 * `nonce="${cspNonce(res)}"` on their inline <script> and <style>.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { RequestHandler, Response } from 'express';
import helmet from 'helmet';

const nonceOf = (_req: http.IncomingMessage, res: http.ServerResponse) => `'nonce-${(res as Response).locals.cspNonce as string}'`;

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

/** The nonce of this response's inline scripts and styles. */
export function cspNonce(res: Response): string {
  return res.locals.cspNonce as string;
}

/** Mount before any route: every answer, pages, JSON and errors alike, gets the headers. */
export const pageHeaders: RequestHandler = (req, res, next) => {
  res.locals.cspNonce = randomBytes(16).toString('base64');
  securityHeaders(req, res, next);
};
