import type http from 'node:http';
import type { Logger } from 'winston';
import { HttpError, payloadTooLarge, writeError } from '../shared/errors.ts';
import { REQUEST_ID_HEADER, requestIdOf } from '../shared/requestContext.ts';
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
    res.setHeader(REQUEST_ID_HEADER, requestIdOf(req));
    res.setHeader('x-content-type-options', 'nosniff');
    void handle(req, res, options).catch((err: unknown) => {
      // As createApp does for every express request: an answer before the body has arrived lingers, then hangs up.
      // Only an error can answer early (a 200 comes after the whole body), so only an error needs it.
      lingerOnUnreadBody(req, res);
      writeError(req, res, err, options.logger);
    });
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, options: RegisterEndpointOptions): Promise<void> {
  // In the order the express routes check: cross-site first, then the token.
  const crossSite = crossSiteRefusal(req);
  if (crossSite) throw crossSite;
  const unauthorized = options.authorize(req);
  if (unauthorized) throw unauthorized;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > options.limit) throw payloadTooLarge(options.limit);
  const contentType = req.headers['content-type'];
  // What nearly every client sends needs no parsing.
  if (contentType !== 'application/json' && contentType !== 'application/json; charset=utf-8') checkContentType(contentType);
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

function checkContentType(header: string | undefined): void {
  const [mediaType, ...params] = (header ?? '').split(';');
  const type = mediaType.trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[^/]+\+json$/.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', 'send the registration as application/json');
  }
  // As express.json would: a charset other than UTF-8 is refused, not read as if it were UTF-8.
  const charset = params.map((p) => /^\s*charset\s*=\s*"?([^";]*)"?\s*$/i.exec(p)?.[1]).find((c) => c !== undefined);
  if (charset !== undefined && !/^utf-?8$/i.test(charset.trim())) {
    throw new HttpError(415, 'unsupported_encoding', `unsupported charset "${charset.trim().toUpperCase()}"`);
  }
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
        reject(payloadTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    // A registration is one chunk, nearly always: no copy into a second buffer for it.
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => reject(new HttpError(400, 'request_aborted', 'the client aborted the request')));
  });
}
