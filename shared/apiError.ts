/**
 * The client side of the HTTP edge: what a call to another service came to, as data a caller
 * switches on (classifyUpstream), and the one error a typed client throws for it (ApiError).
 * The error handler, the portal's error pages and the CLI all read a failure through these.
 */
import { isAxiosError } from 'axios';

/** How a call to another service failed. */
export type UpstreamFailure =
  /** No instance of the service is listed: nothing was sent. */
  | { kind: 'no_provider'; message: string }
  /** No answer in time: the request may or may not have been handled. */
  | { kind: 'timeout'; target?: string; code?: string; reason: string }
  /** The request reached no server (refused, no route, no such host): safe to send elsewhere. */
  | { kind: 'refused'; target?: string; code?: string; reason: string }
  /** The connection broke before an answer: the request may or may not have been handled. */
  | { kind: 'lost'; target?: string; code?: string; reason: string }
  /** The service answered with an error status; `code` and `message` are its JSON error's, when it sent one. */
  | { kind: 'answered'; target?: string; status: number; code?: string; message?: string };

/** The connection errors that mean the request never reached a live server. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** axios says ECONNABORTED when its own timeout fires (ETIMEDOUT with clarifyTimeoutError). */
const TIMED_OUT = new Set(['ECONNABORTED', 'ETIMEDOUT']);

/**
 * A service answered with an error: its status, and the code and message of its JSON error. Status 0
 * means it was not reached (`code` then says why: ECONNREFUSED, ECONNABORTED, ...).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get unreachable(): boolean {
    return this.status === 0;
  }

  /** The error for an answered failure; `service` names who answered when its body says nothing. */
  static answered<E extends ApiError>(this: new (status: number, code: string, message: string) => E, failure: Answered, service: string): E {
    return new this(failure.status, failure.code ?? 'http_error', failure.message ?? `${service} answered ${failure.status}`);
  }

  /** The error for a call that got no answer; `where` names what was not reached ("registry at <url>"). */
  static unreachable<E extends ApiError>(this: new (status: number, code: string, message: string) => E, failure: NotAnswered, where: string): E {
    return new this(0, failure.code ?? 'unreachable', `${where} is unreachable (${failure.reason})`);
  }
}

export type Answered = Extract<UpstreamFailure, { kind: 'answered' }>;
export type NotAnswered = Extract<UpstreamFailure, { kind: 'timeout' | 'refused' | 'lost' }>;

function notAnswered(code: string | undefined, reason: string, target?: string): NotAnswered {
  const kind = code !== undefined && TIMED_OUT.has(code) ? 'timeout' : code !== undefined && NOT_DELIVERED.has(code) ? 'refused' : 'lost';
  return { kind, target, code, reason };
}

/** The `{"error":{"code","message"}}` of an answer, also from a byte body; what isn't a string is left out. */
function errorOf(data: unknown): { code?: string; message?: string } {
  let body = data;
  if (body instanceof ArrayBuffer || Buffer.isBuffer(body)) {
    try {
      body = JSON.parse(Buffer.from(body as ArrayBuffer).toString('utf8'));
    } catch {
      return {};
    }
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
  return {
    code: typeof error?.code === 'string' ? error.code : undefined,
    message: typeof error?.message === 'string' ? error.message : undefined,
  };
}

/** What a failed call came to, or undefined when `err` is not a failed call (a bug, a bad argument). */
export function classifyUpstream(err: unknown): UpstreamFailure | undefined {
  if (err instanceof ApiError) {
    return err.unreachable ? notAnswered(err.code, err.message) : { kind: 'answered', status: err.status, code: err.code, message: err.message };
  }
  // The service client throws NoProviderError (code no_provider) from its interceptor; axios may wrap it.
  const cause = isAxiosError(err) && err.cause instanceof Error ? err.cause : err;
  if (cause instanceof Error && (cause as { code?: unknown }).code === 'no_provider') return { kind: 'no_provider', message: cause.message };
  if (!isAxiosError(err)) return undefined;
  const target = err.config?.baseURL;
  if (err.response) return { kind: 'answered', target, status: err.response.status, ...errorOf(err.response.data) };
  return notAnswered(err.code, err.code ?? err.message, target);
}
