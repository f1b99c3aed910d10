import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { RequestHandler } from 'express';

export const REQUEST_ID_HEADER = 'x-request-id';

interface RequestContext {
  requestId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** The request id of the request being served, if any. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** Runs fn with the given request id as the current one (for work that isn't an HTTP request). */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId }, fn);
}

/** An id a client may give (x-request-id, a log batch id): short, and safe in a header, a log line and a file name. */
export const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: the client's x-request-id when it is a valid one (never echoed otherwise), or a new one. */
export function requestIdOf(req: http.IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && CLIENT_ID.test(incoming) ? incoming : randomUUID();
}

/** Reads or creates x-request-id, echoes it back, and keeps it for the request's async context. */
export const requestIdMiddleware: RequestHandler = (req, res, next) => {
  const requestId = requestIdOf(req);
  res.setHeader(REQUEST_ID_HEADER, requestId);
  storage.run({ requestId }, next);
};
