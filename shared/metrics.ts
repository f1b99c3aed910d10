import client from 'prom-client';
import type { RequestHandler } from 'express';

/** One prom-client registry per service object (no global state), with the default process metrics. */
export function createMetrics(service: string): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels({ service });
  client.collectDefaultMetrics({ register: registry });
  return registry;
}

export function metricsHandler(registry: client.Registry): RequestHandler {
  return async (_req, res, next) => {
    try {
      res.setHeader('Content-Type', registry.contentType);
      res.send(await registry.metrics());
    } catch (err) {
      next(err);
    }
  };
}

export { client as prom };
