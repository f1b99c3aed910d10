/**
 * The read side's guard: with a token set (ADMIN_TOKEN, else REGISTRY_TOKEN), a service's pages and query API
 * answer only a caller who shows it, as `Authorization: Bearer <token>` (programs, the CLI) or as the cookie that
 * the login form (POST /login) sets (people). Without a token nothing is asked: the loopback default stays open.
 * Writes keep their own rules; this guards GET and HEAD only. Each service mounts it with one line, before its routes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import express, { type RequestHandler, type Response, type Router } from 'express';
import { bearerMatches } from './auth.ts';
import { HttpError, appLogger, logRefusal, methodNotAllowed } from './errors.ts';
import { envOptional } from './config.ts';
import { limitBody, limitBytes } from './bodyLimit.ts';
import { cspNonce } from './pageHeaders.ts';
import { loginPage } from './loginPage.ts';

export const READ_COOKIE = 'switchboard_read';
const COOKIE_MAX_AGE_MS = 12 * 3600 * 1000;
const FORM_LIMIT = '4kb';

export interface ReadAccessOptions {
  /** Whose pages these are, for the login page's title. */
  service: string;
  /** REGISTRY_TOKEN: the read token when no ADMIN_TOKEN is set, and always accepted as a bearer (services and the CLI send it). */
  registryToken?: string;
  /** ADMIN_TOKEN (read from the environment unless given): when set, it is the token people log in with. */
  adminToken?: string;
  /** Pages (exact paths): without access they answer 401 with the login form. */
  pages: string[];
  /** API path prefixes: without access they answer 401 in the JSON error shape. */
  apis: string[];
}

/** The token the read side asks for: ADMIN_TOKEN wins over REGISTRY_TOKEN. */
export function readToken(registryToken: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return envOptional('ADMIN_TOKEN', env) ?? registryToken;
}

/** The cookie holds a MAC of the token, never the token: a stolen cookie doesn't give the token, and a new token ends old logins. */
function cookieValue(token: string): string {
  return createHmac('sha256', token).update('switchboard read access').digest('base64url');
}

function cookieOf(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const under = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix.replace(/\/$/, '')}/`);

/** Where to go after logging in: a path on this service only ("//host" and "\\host" are other hosts to a browser). */
function localPath(value: unknown): string {
  return typeof value === 'string' && value.length <= 2000 && /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : '/';
}

export function readAccess(options: ReadAccessOptions): Router {
  const router = express.Router();
  const token = options.adminToken ?? readToken(options.registryToken);
  if (!token) return router;
  const bearers = [...new Set([token, options.registryToken].filter((t): t is string => Boolean(t)))];
  const loggedIn = cookieValue(token);
  const allowed = (req: http.IncomingMessage) =>
    bearers.some((t) => bearerMatches(req.headers.authorization, t)) || sameText(cookieOf(req, READ_COOKIE) ?? '', loggedIn);
  const showLogin = (res: Response, status: number, next: string, problem?: string) => {
    // A refusal answered with the form is logged like any other 4xx (one warn line, shared/errors.ts).
    const logger = status === 401 ? appLogger(res.req) : undefined;
    if (logger) logRefusal(res.req, res, new HttpError(401, problem ? 'wrong_token' : 'login_required', problem ?? 'this page needs the operator\'s token; the login form was shown'), logger);
    res.status(status).set('cache-control', 'no-store').type('html').send(loginPage({ nonce: cspNonce(res), service: options.service, next, problem }));
  };

  router.get('/login', (req, res) => showLogin(res, 200, localPath(req.query.next)));
  // Cross-site posts never get here: createApp refuses them (shared/crossSite.ts), so no one can log a browser in to their own token.
  router.post('/login', limitBody(express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 5 }), limitBytes(FORM_LIMIT), ['application/x-www-form-urlencoded']), (req, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const next = localPath(form.next);
    if (!sameText(typeof form.token === 'string' ? form.token : '', token)) {
      showLogin(res, 401, next, 'That is not the token this platform was started with.');
      return;
    }
    res.cookie(READ_COOKIE, loggedIn, { httpOnly: true, sameSite: 'strict', path: '/', maxAge: COOKIE_MAX_AGE_MS });
    res.redirect(303, next);
  });
  router.post('/logout', (_req, res) => {
    res.clearCookie(READ_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/' });
    res.redirect(303, '/login');
  });
  router.all('/login', methodNotAllowed(['GET', 'POST']));
  router.all('/logout', methodNotAllowed(['POST']));

  const guard: RequestHandler = (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || allowed(req)) return next();
    if (options.pages.includes(req.path)) return showLogin(res, 401, localPath(req.originalUrl));
    if (!options.apis.some((prefix) => under(req.path, prefix))) return next();
    next(new HttpError(401, 'unauthorized', `${req.path} needs the operator's token: Authorization: Bearer <ADMIN_TOKEN or REGISTRY_TOKEN>, or log in at /login`, { 'WWW-Authenticate': 'Bearer' }));
  };
  router.use(guard);
  return router;
}
