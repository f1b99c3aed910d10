import type http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'winston';
import { HttpError, errorBody } from '../shared/errors.ts';
import { REQUEST_ID_HEADER } from '../shared/requestContext.ts';
import { lingerOnUnreadBody } from '../shared/bodyLimit.ts';
import { crossSiteRefusal } from '../shared/crossSite.ts';

export interface RegisterEndpointOptions {
  /** Largest body accepted, in bytes. */
  limit: number;
  /** The error to answer when the caller may not register (missing token), if any. */
  authorize(req: http.IncomingMessage): HttpError | undefined;
  /** Validates and registers; throws HttpError for bad input. */
  register(body: unknown, remoteAddress: string | undefined): Promise<unknown>;
  /** Everything else (and any POST /services this path leaves alone) goes here: the express app. */
  fallback: http.RequestListener;
  logger: Logger;
}

const validRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * POST /services, the registry's one hot endpoint, served straight from node's http server:
 * the same checks, limits and JSON errors as the express routes, at a fraction of the cost per
 * call (a fleet registering thousands of instances a second spends its time here).
 * Compressed bodies are left to express, which knows how to inflate them.
 */
export function registerEndpoint(options: RegisterEndpointOptions): http.RequestListener {
  return (req, res) => {
    const path = req.url ?? '';
    const isRegistration = req.method === 'POST' && (path === '/services' || path.startsWith('/services?'));
    const encoding = req.headers['content-encoding'];
    if (!isRegistration || (encoding !== undefined && encoding !== 'identity')) {
      options.fallback(req, res);
      return;
    }
    const incomingId = req.headers[REQUEST_ID_HEADER];
    const requestId = typeof incomingId === 'string' && validRequestId.test(incomingId) ? incomingId : randomUUID();
    res.setHeader(REQUEST_ID_HEADER, requestId);
    res.setHeader('x-content-type-options', 'nosniff');
    void handle(req, res, options).catch((err: unknown) => fail(req, res, err, options.logger));
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, options: RegisterEndpointOptions): Promise<void> {
  // In the order the express routes check: cross-site first, then the token.
  const crossSite = crossSiteRefusal(req);
  if (crossSite) throw crossSite;
  const unauthorized = options.authorize(req);
  if (unauthorized) throw unauthorized;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > options.limit) throw tooLarge(options.limit);
  const [mediaType, ...params] = (req.headers['content-type'] ?? '').split(';');
  const type = mediaType.trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[^/]+\+json$/.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', 'send the registration as application/json');
  }
  // As express.json would: a charset other than UTF-8 is refused, not read as if it were UTF-8.
  const charset = params.map((p) => /^\s*charset\s*=\s*"?([^";]*)"?\s*$/i.exec(p)?.[1]).find((c) => c !== undefined);
  if (charset !== undefined && !/^utf-?8$/i.test(charset.trim())) {
    throw new HttpError(415, 'unsupported_encoding', `unsupported charset "${charset.trim().toUpperCase()}"`);
  }
  const text = await readBody(req, options.limit);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'malformed_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
  const answer = JSON.stringify(await options.register(body, req.socket.remoteAddress));
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(answer) });
  res.end(answer);
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'payload_too_large', `request body is larger than the limit of ${limit} bytes`);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => reject(new HttpError(400, 'request_aborted', 'the client aborted the request')));
  });
}

/** Writes the one JSON error shape; 400s and 413s close the connection, as the express error handler does. */
function fail(req: http.IncomingMessage, res: http.ServerResponse, err: unknown, logger: Logger): void {
  const known = err instanceof HttpError ? err : undefined;
  if (!known) logger.error(`unhandled error on POST /services: ${(err as Error)?.stack ?? err}`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = known?.status ?? 500;
  const body = JSON.stringify(errorBody(known?.code ?? 'internal', known?.message ?? 'internal server error'));
  const headers: Record<string, string | number> = { ...known?.headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };
  // A body still arriving is read a little longer and then cut off, so the client gets to read this answer.
  if ((status === 400 || status === 413) && req.complete) headers.connection = 'close';
  else lingerOnUnreadBody(req, res);
  res.writeHead(status, headers);
  res.end(body);
}
