import type http from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'winston';
import { classifyUpstream } from './apiError.ts';
import { REQUEST_ID_HEADER } from './requestContext.ts';

/** An error that knows its HTTP status and a stable machine-readable code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string, code = 'bad_request') => new HttpError(400, code, message);
export const notFound = (message: string, code = 'not_found') => new HttpError(404, code, message);
export const conflict = (message: string, code = 'conflict') => new HttpError(409, code, message);
/** The one 413 for a request body over its limit, whoever measured it. */
export const payloadTooLarge = (limit: number) => new HttpError(413, 'payload_too_large', `request body is larger than the limit of ${limit} bytes`);

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Maps body-parser's errors (they carry `type` and `status`) to our shape. */
function fromBodyParser(err: { type?: string; status?: number; limit?: number; message?: string }): HttpError | undefined {
  switch (err.type) {
    case 'entity.too.large':
      return payloadTooLarge(err.limit ?? 0);
    case 'entity.parse.failed':
      return new HttpError(400, 'malformed_json', `request body is not valid JSON: ${err.message ?? ''}`.trim());
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpError(415, 'unsupported_encoding', err.message ?? 'unsupported encoding');
    case 'request.aborted':
      return new HttpError(400, 'request_aborted', 'the client aborted the request');
    case 'request.size.invalid':
      return new HttpError(400, 'bad_length', 'request size did not match Content-Length');
    default:
      return fromClientError(err);
  }
}

/**
 * Other 4xx errors thrown by express and its parsers (http-errors: a gzip body that does not
 * inflate, a path parameter that does not URL-decode): the client's fault, said as such.
 */
function fromClientError(err: { status?: number; statusCode?: number; expose?: boolean; message?: string }): HttpError | undefined {
  const status = err.status ?? err.statusCode;
  if (typeof status !== 'number' || status < 400 || status > 499 || err.expose === false) return undefined;
  return new HttpError(status, 'bad_request', `the request could not be read: ${err.message ?? 'malformed'}`);
}

/** A failed call to another service becomes a 502/503/504 that says which service and why. */
function fromUpstream(err: unknown): HttpError | undefined {
  const failure = classifyUpstream(err);
  if (!failure) return undefined;
  if (failure.kind === 'no_provider') return new HttpError(503, 'no_provider', failure.message, { 'Retry-After': '1' });
  const target = failure.target ?? 'another service';
  switch (failure.kind) {
    case 'timeout':
      return new HttpError(504, 'upstream_timeout', `${target} did not answer in time`);
    case 'answered':
      // A service that says it is away for now (storage while S3 is) makes us away for now too: the caller retries.
      if (failure.status === 503) return new HttpError(503, 'upstream_unavailable', `${target} is unavailable for now${failure.message ? `: ${failure.message}` : ''}`, { 'Retry-After': '2' });
      return new HttpError(502, 'upstream_error', `${target} answered ${failure.status}${failure.message ? `: ${failure.message}` : ''}`);
    default:
      return new HttpError(502, 'upstream_unreachable', `${target} is unreachable (${failure.reason})`);
  }
}

/** Routes that don't exist answer 404 in the JSON error shape. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

/** Only the listed methods are allowed on a path: anything else is a 405. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (req, _res, next) =>
    next(
      new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.path}; use ${allowed.join(', ')}`, {
        Allow: allowed.join(', '),
      }),
    );
}

/**
 * Any error as the HttpError it answers as; undefined for a bug (a 500). A failed call to another service
 * is read first: an axios error carries the upstream's `status`, which is not this request's fault.
 */
function toHttpError(err: unknown): HttpError | undefined {
  return err instanceof HttpError ? err : (fromUpstream(err) ?? fromBodyParser(err ?? {}));
}

/**
 * The one JSON error writer, for express and for the plain node handlers alike: `{"error":{"code","message"}}`
 * with the error's status and headers, never a stack trace (a bug is logged, and answers 500 internal).
 */
export function writeError(req: http.IncomingMessage, res: http.ServerResponse, err: unknown, logger: Logger): void {
  const httpError = toHttpError(err);
  if (!httpError) logger.error(`unhandled error on ${req.method} ${pathOf(req)}: ${(err as Error | undefined)?.stack ?? err}`);
  else if (httpError.status < 500) logRefusal(req, res, httpError, logger);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = httpError?.status ?? 500;
  const body = JSON.stringify(errorBody(httpError?.code ?? 'internal', httpError?.message ?? 'internal server error'));
  const headers: Record<string, string | number> = {
    ...httpError?.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  };
  // A body still arriving is not cut off here (the client would see a reset, not this answer): lingerOnUnreadBody does it.
  if ((status === 413 || status === 400) && req.complete) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * A refused request leaves one warn line with its reason, so an operator sees why a caller got a 4xx (no stack:
 * it is not our fault). The log service's own logger is local, so its intake refusals don't come back to it.
 */
export function logRefusal(req: http.IncomingMessage, res: http.ServerResponse, refusal: HttpError, logger: Logger): void {
  const path = pathOf(req);
  const requestId = res.getHeader(REQUEST_ID_HEADER);
  logger.warn(`${req.method} ${path} refused ${refusal.status} ${refusal.code}: ${refusal.message}`, {
    method: req.method,
    path,
    status: refusal.status,
    code: refusal.code,
    ...(typeof requestId === 'string' ? { requestId } : {}),
  });
}

const pathOf = (req: http.IncomingMessage) => (req as { path?: string }).path ?? (req.url ?? '').split('?')[0];

/** The logger the app's error handler writes to (finishApp keeps it on the app), for refusals answered with a page. */
export function appLogger(req: { app?: { locals: Record<string, unknown> } }): Logger | undefined {
  return req.app?.locals.errorLogger as Logger | undefined;
}

/** The express error handler: every error leaves through writeError. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => writeError(req, res, err, logger);
}
