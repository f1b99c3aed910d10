import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import type { Logger } from 'winston';
import type { Registry as MetricsRegistry } from 'prom-client';
import { errorHandler, notFoundHandler } from './errors.ts';
import { requestIdMiddleware } from './requestContext.ts';
import { metricsHandler } from './metrics.ts';
import { limitBody, limitBytes, lingerMiddleware } from './bodyLimit.ts';
import { answerClientError } from './clientError.ts';
import { envInt } from './config.ts';
import { refuseCrossSite } from './crossSite.ts';
import { pageHeaders } from './pageHeaders.ts';

export const DEFAULT_JSON_LIMIT = '64kb';

/**
 * An express app with what every service has: request ids, security headers, cross-site requests
 * refused, JSON and text bodies (limited), /metrics.
 */
export function createApp(options: { metrics: MetricsRegistry; jsonLimit?: string | number }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestIdMiddleware);
  app.use(lingerMiddleware);
  app.use(pageHeaders);
  app.use(refuseCrossSite);
  app.get('/metrics', metricsHandler(options.metrics));
  const limit = options.jsonLimit ?? DEFAULT_JSON_LIMIT;
  const jsonTypes = ['application/json', 'application/*+json'];
  app.use(limitBody(express.json({ limit, type: jsonTypes }), limitBytes(limit), jsonTypes));
  app.use(limitBody(express.text({ limit, type: 'text/plain' }), limitBytes(limit), ['text/plain']));
  return app;
}

/** The 404 and the JSON error handler; mount after the routes. */
export function finishApp(app: Express, logger: Logger): void {
  // Routes that answer a refusal with a page (the login form) log it here too (errors.ts appLogger).
  app.locals.errorLogger = logger;
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
}

export interface ServerTimeouts {
  /** Whole request (headers and body) must arrive within this. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

/** Listens on host:port (0 is ephemeral) with timeouts that stop slow clients from holding sockets. */
export async function listen(app: Express | http.RequestListener, host: string, port: number, timeouts: ServerTimeouts = {}): Promise<http.Server> {
  // Checked every second (node's default is every 30 s), so a slow client is cut off near its timeout.
  const server = http.createServer({ connectionsCheckingInterval: 1000 }, app);
  // REQUEST_TIMEOUT_MS and HEADERS_TIMEOUT_MS, when set, override a service's own choice.
  server.requestTimeout = envInt('REQUEST_TIMEOUT_MS', timeouts.requestTimeoutMs ?? 30_000);
  server.headersTimeout = envInt('HEADERS_TIMEOUT_MS', timeouts.headersTimeoutMs ?? 10_000);
  server.on('clientError', answerClientError);
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs ?? 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export function boundPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}

/** Stops accepting, lets in-flight requests finish (up to graceMs), then drops what's left. */
export async function closeServer(server: http.Server, graceMs = 5000): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  timer.unref();
  await closed;
  clearTimeout(timer);
}
