import axios, { type AxiosInstance, type AxiosRequestConfig, type InternalAxiosRequestConfig, isAxiosError } from 'axios';
import http from 'node:http';
import type { ProviderTable } from './providers.ts';
import { currentRequestId, REQUEST_ID_HEADER } from './requestContext.ts';
import { classifyUpstream } from './apiError.ts';

/** No instance of the service is up: thrown at once, never a hang. */
export class NoProviderError extends Error {
  readonly code = 'no_provider';
  constructor(readonly service: string) {
    super(`no instance of "${service}" is up (the registry lists none)`);
    this.name = 'NoProviderError';
  }
}

export function isNoProviderError(err: unknown): err is NoProviderError {
  return err instanceof NoProviderError || (isAxiosError(err) && err.cause instanceof NoProviderError);
}

const IDEMPOTENT = new Set(['get', 'head', 'put', 'delete', 'options']);
/** Errors after which a request may or may not have been handled (only idempotent ones go elsewhere); a refused one goes elsewhere anyway. */
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_SOCKET_CONNECTION_TIMEOUT']);

interface FailoverState {
  service: string;
  tried: Set<string>;
  /** The instance to send to once more (a kept-alive connection it closed as the request went out). */
  resendTo?: string;
  resent?: boolean;
}

type FailoverConfig = InternalAxiosRequestConfig & { failover?: FailoverState };

export interface ServiceClientOptions {
  timeoutMs?: number;
  /** Extra instances to try after a connection error (default: every other instance). */
  maxFailovers?: number;
}

function isReadable(data: unknown): boolean {
  return typeof (data as { pipe?: unknown } | null)?.pipe === 'function';
}

const keepAliveAgent = () => new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * An axios instance for one required service: each request goes to the next provider
 * (round-robin), fails over to another instance on a connection error, carries the current
 * request id, and has a timeout.
 */
export function createServiceClient(service: string, providers: ProviderTable, options: ServiceClientOptions = {}): AxiosInstance {
  const instance = axios.create({ timeout: options.timeoutMs ?? 10_000, httpAgent: keepAliveAgent(), maxRedirects: 0 });

  instance.interceptors.request.use((config: FailoverConfig) => {
    config.failover ??= { service, tried: new Set() };
    const url = config.failover.resendTo ?? providers.pick(service, config.failover.tried);
    config.failover.resendTo = undefined;
    if (!url) throw new NoProviderError(service);
    config.failover.tried.add(url);
    config.baseURL = url;
    const requestId = currentRequestId();
    if (requestId && !config.headers.has(REQUEST_ID_HEADER)) config.headers.set(REQUEST_ID_HEADER, requestId);
    return config;
  });

  instance.interceptors.response.use(undefined, async (err: unknown) => {
    if (!isAxiosError(err) || !err.config) throw err;
    const config = err.config as FailoverConfig;
    const state = config.failover;
    const code = err.code ?? '';
    const method = (config.method ?? 'get').toLowerCase();
    const refused = classifyUpstream(err)?.kind === 'refused';
    const retryable = refused || (!err.response && CONNECTION_LOST.has(code) && IDEMPOTENT.has(method));
    if (!state || !retryable) throw err;
    // A pooled connection that the instance closed (its idle timeout) just as this request went out on it: the
    // instance is not at fault, so it gets the request once more, on a new connection, before any failover.
    const reused = (err.request as { reusedSocket?: boolean } | undefined)?.reusedSocket === true;
    // A body sent as a stream has been read (part of it, or all): sent again, it would arrive empty or cut short.
    // The caller hears of the failure instead (one that holds the bytes can send them again).
    const replayable = !isReadable(config.data);
    if (reused && !refused && config.baseURL) {
      if (!replayable) throw err;
      if (!state.resent) {
        state.resent = true;
        state.resendTo = config.baseURL;
        return instance.request(config as AxiosRequestConfig);
      }
    }
    if (config.baseURL) providers.markSuspect(config.baseURL);
    if (!replayable) throw err;
    const limit = options.maxFailovers ?? Infinity;
    if (state.tried.size > limit || !providers.has(service, state.tried)) throw err;
    return instance.request(config as AxiosRequestConfig);
  });

  return instance;
}
