/**
 * Refusing oversized bodies early, and hanging up on unread ones. body-parser, on a body over
 * its limit, reads the whole rest of it before it reports the 413 (100 MiB read to say "no");
 * node, after an answer, reads whatever body is left to keep the connection. Both are bounded here.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { RequestHandler } from 'express';
import { payloadTooLarge } from './errors.ts';

/** After an answer to a request whose body is still arriving, the connection is closed this much later. */
export const LINGER_MS = 1000;

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** "64kb", "5mb" or a number of bytes, as body-parser reads its limit. */
export function limitBytes(limit: string | number): number {
  if (typeof limit === 'number') return limit;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(limit);
  if (!match) throw new Error(`not a size: "${limit}"`);
  return Math.floor(Number(match[1]) * UNITS[(match[2] ?? 'b').toLowerCase()]);
}

/**
 * Wraps a body-parser middleware: a declared Content-Length over the limit is a 413 before a byte
 * is read, and a chunked body is a 413 as soon as it passes the limit (not after it has all arrived).
 * `types` are the content types the parser reads (others pass by untouched), or 'any'.
 */
export function limitBody(parser: RequestHandler, limit: number, types: string[] | 'any'): RequestHandler {
  return (req, res, next) => {
    if (types !== 'any' && !req.is(types)) return next();
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) return next(payloadTooLarge(limit));
    let answered = false;
    const once = (err?: unknown) => {
      if (answered) return;
      answered = true;
      req.off('data', count);
      next(err);
    };
    let seen = 0;
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limit) once(payloadTooLarge(limit));
    };
    // The parser attaches its own listeners synchronously; ours only counts beside them.
    void parser(req, res, once);
    if (!answered && !req.readableEnded && (req as { _body?: boolean })._body !== true) req.on('data', count);
  };
}

/** Whether part of the request's body has still to arrive. */
export function bodyStillArriving(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  return hasBody && !req.complete;
}

/**
 * An answer given while its request body is still arriving says `Connection: close`; then, instead
 * of closing at once (a reset, which can wipe our answer from the client's buffer before it reads
 * it) or reading on (all of a huge body), we send FIN, stop reading, and hang up LINGER_MS later:
 * the client's writes block, and it has the time to read the answer.
 */
export function lingerOnUnreadBody(req: http.IncomingMessage, res: http.ServerResponse): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: http.ServerResponse, ...args: Parameters<typeof writeHead>) {
    const socket = req.socket;
    if (socket && !this.headersSent && bodyStillArriving(req)) {
      this.setHeader('Connection', 'close');
      // node closes a "Connection: close" socket as soon as the answer is out; linger instead.
      (socket as { destroySoon?: () => void }).destroySoon = () => linger(socket);
    }
    return writeHead.apply(this, args);
  } as typeof writeHead;
}

function linger(socket: Socket): void {
  socket.end();
  socket.pause();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Express middleware form of lingerOnUnreadBody, for every request. */
export const lingerMiddleware: RequestHandler = (req, res, next) => {
  lingerOnUnreadBody(req, res);
  next();
};
