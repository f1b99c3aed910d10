/**
 * The registry's read-only views beyond the listing: one instance and its history, Prometheus's
 * discovery, the timeline behind the dashboard's chart, and the replicas (who owns what, etcd's health).
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Registry } from './registry.ts';
import type { Replication } from './replication.ts';
import type { Timeline } from './timeline.ts';
import { historyView, toView } from './instanceView.ts';
import { prometheusTargets } from './discovery.ts';
import { HttpError, methodNotAllowed } from '../shared/errors.ts';
import { parseWith } from '../shared/validate.ts';

const instanceIdParam = z.object({ instanceId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'is not a valid instance id') });

export interface ReadRoutesDeps {
  registry: Registry;
  replication?: Replication;
  timeline: Timeline;
  /** This registry's URL and id, for the discovery's own entry when there are no replicas. */
  self: () => { id: string; url: string };
  etcdEndpoints: string[];
}

interface ReplicaEntry {
  id: string;
  url: string;
  owns: number;
}

export function readRoutes({ registry, replication, timeline, self, etcdEndpoints }: ReadRoutesDeps): Router {
  const router = express.Router();
  const record = (params: unknown) => {
    const { instanceId } = parseWith(instanceIdParam, params, 'invalid_field');
    const found = registry.get(instanceId);
    if (!found) throw new HttpError(404, 'unknown_instance', `no registered instance with id ${instanceId}`);
    return found;
  };

  router.get('/services/prometheus', (_req, res) => {
    const health = replication?.health() as { replicas?: ReplicaEntry[] } | undefined;
    const registries = health?.replicas?.length ? health.replicas.map(({ id, url }) => ({ id, url })) : [self()];
    res.json(prometheusTargets(registry.all(), registries));
  });
  router.get('/services/:instanceId', (req, res) => {
    res.json(toView(record(req.params)));
  });
  router.get('/services/:instanceId/history', (req, res) => {
    res.json(historyView(record(req.params)));
  });
  router.get('/timeline', (_req, res) => {
    res.json(timeline.view());
  });

  // Each replica with the instances it checks and the subscribers it patches, and etcd's health.
  router.get('/replicas', (_req, res) => {
    if (!replication) return void res.json({ store: 'file' });
    const health = replication.health() as { replicas?: ReplicaEntry[] } & Record<string, unknown>;
    const owned = new Map<string, { instances: string[]; subscribers: string[] }>();
    for (const instance of registry.all()) {
      const owner = replication.ownerOf(instance.instanceId) ?? '';
      let lists = owned.get(owner);
      if (!lists) owned.set(owner, (lists = { instances: [], subscribers: [] }));
      lists.instances.push(instance.instanceId);
      if (instance.serviceUpdateURL && instance.requiredServices.length > 0) lists.subscribers.push(instance.instanceId);
    }
    const replicas = (health.replicas ?? []).map((replica) => ({ ...replica, ...(owned.get(replica.id) ?? { instances: [], subscribers: [] }) }));
    res.json({ ...health, etcdEndpoints, replicas });
  });

  router.all('/services/prometheus', methodNotAllowed(['GET']));
  router.all('/services/:instanceId/history', methodNotAllowed(['GET']));
  router.all('/timeline', methodNotAllowed(['GET']));
  return router;
}
