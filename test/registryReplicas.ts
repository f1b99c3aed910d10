/** What the replica tests share: start replicas on one etcd, and read a replica's view. */
import { getJson, startRegistry, waitFor, type Proc } from './helpers.ts';
import type { EtcdCluster } from '../harness/etcd.ts';

export function startReplica(etcd: EtcdCluster | string, id: string, env: Record<string, string> = {}): Promise<Proc> {
  const endpoints = typeof etcd === 'string' ? etcd : etcd.endpoints;
  return startRegistry({ REGISTRY_STORE: 'etcd', ETCD_ENDPOINTS: endpoints, REGISTRY_REPLICA_ID: id, ...env });
}

export function startReplicas(etcd: EtcdCluster, ids: string[], env: Record<string, string> = {}): Promise<Proc[]> {
  return Promise.all(ids.map((id) => startReplica(etcd, id, env)));
}

export interface ListedInstance {
  instanceId: string;
  serviceName: string;
  serviceURL: string;
  state: string;
}

export async function listed(registry: Proc, name: string): Promise<ListedInstance[]> {
  const { body } = await getJson<{ instances: ListedInstance[] }>(`${registry.url}/services?name=${name}`);
  return body.instances;
}

export async function upUrls(registry: Proc, name: string): Promise<string[]> {
  return (await listed(registry, name)).filter((i) => i.state === 'up').map((i) => i.serviceURL).sort();
}

export async function replicaIds(registry: Proc): Promise<string[]> {
  const { body } = await getJson<{ replicas?: { id: string }[] }>(`${registry.url}/replicas`);
  return (body.replicas ?? []).map((r) => r.id).sort();
}

export async function replicaCount(registry: Proc): Promise<number> {
  return (await replicaIds(registry)).length;
}

/**
 * How often a service re-synced because a replica took it over: the takeover's patch carries seq 0. (Other gaps,
 * such as a patch given up on a loaded machine, also re-sync, by the seq rule; they are not takeovers.)
 */
export function takeoverResyncsIn(text: string): number {
  return text.split('\n').filter((line) => /patch 0 where \d+ was expected: re-syncing/.test(line)).length;
}

/** Registers a stub-served instance straight over HTTP; the answer's status and instance id. */
export async function register(registry: Proc, body: Record<string, unknown>): Promise<{ status: number; instanceId?: string; headers: Headers; error?: { code: string } }> {
  const res = await fetch(`${registry.url}/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const answer = (await res.json().catch(() => ({}))) as { instanceId?: string; error?: { code: string } };
  return { status: res.status, instanceId: answer.instanceId, headers: res.headers, error: answer.error };
}

/** A fixture service's instance id, once its registration was answered (it listens before it registers). */
export function instanceIdOf(service: Proc): Promise<string> {
  return waitFor(async () => (await getJson(`${service.url}/debug/providers`)).body.instanceId as string | undefined, 'the service to register') as Promise<string>;
}
