import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'winston';
import { isAxiosError } from 'axios';

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
      return new HttpError(413, 'payload_too_large', `request body is larger than the limit of ${err.limit} bytes`);
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
  const cause = isAxiosError(err) && err.cause instanceof Error && (err.cause as { code?: string }).code === 'no_provider' ? err.cause : err;
  if (cause instanceof Error && (cause as { code?: string }).code === 'no_provider') {
    return new HttpError(503, 'no_provider', cause.message, { 'Retry-After': '1' });
  }
  if (!isAxiosError(err)) return undefined;
  const target = err.config?.baseURL ?? 'another service';
  if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') {
    return new HttpError(504, 'upstream_timeout', `${target} did not answer in time`);
  }
  if (err.response) {
    const body = err.response.data as { error?: { message?: string } } | undefined;
    return new HttpError(502, 'upstream_error', `${target} answered ${err.response.status}${body?.error?.message ? `: ${body.error.message}` : ''}`);
  }
  return new HttpError(502, 'upstream_unreachable', `${target} is unreachable (${err.code ?? err.message})`);
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

/** The one error handler: every error leaves as `{"error":{"code","message"}}`, never a stack trace. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const httpError = err instanceof HttpError ? err : (fromBodyParser(err ?? {}) ?? fromUpstream(err));
    const status = httpError?.status ?? 500;
    if (!httpError) logger.error(`unhandled error on ${req.method} ${req.path}: ${err?.stack ?? err}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const code = httpError?.code ?? 'internal';
    const message = httpError?.message ?? 'internal server error';
    for (const [name, value] of Object.entries(httpError?.headers ?? {})) res.setHeader(name, value);
    // A body still arriving is not cut off here (the client would see a reset, not this answer): see lingerOnUnreadBody.
    if ((status === 413 || status === 400) && req.complete) res.setHeader('Connection', 'close');
    res.status(status).json(errorBody(code, message));
  };
}
