/**
 * Registry replicas on a real etcd (REGISTRY_STORE=etcd): what one replica acknowledges survives its
 * SIGKILL, the survivor takes over checks and patches at once, and services given REGISTRY_URL=a,b carry on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, providersOf, startFixture, startRegistry, startStub, waitFor, type Proc } from './helpers.ts';
import { skipUnlessEngine, startEtcd, type EtcdCluster } from '../harness/etcd.ts';

const skip = skipUnlessEngine('etcd');

async function replicas(etcd: EtcdCluster, ids: string[]): Promise<Proc[]> {
  return Promise.all(ids.map((id) => startRegistry({ REGISTRY_STORE: 'etcd', ETCD_ENDPOINTS: etcd.endpoints, REGISTRY_REPLICA_ID: id })));
}

async function upUrls(registry: Proc, name: string): Promise<string[]> {
  const { body } = await getJson<{ instances: { serviceURL: string; state: string }[] }>(`${registry.url}/services?name=${name}`);
  return body.instances.filter((i) => i.state === 'up').map((i) => i.serviceURL).sort();
}

async function replicaCount(registry: Proc): Promise<number> {
  return ((await getJson<{ replicas: unknown[] }>(`${registry.url}/replicas`)).body.replicas ?? []).length;
}

test('kill -9 of one of two replicas while registrations flow: nothing acknowledged is lost, dependents agree with the truth within 1 s', { skip }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const [a, b] = await replicas(etcd, ['a', 'b']);
  t.after(() => Promise.all([a.stop('SIGKILL'), b.stop()]));
  await waitFor(async () => (await replicaCount(a)) === 2 && (await replicaCount(b)) === 2, 'both replicas to see each other');
  const list = `${a.url},${b.url}`;
  const dependents: Proc[] = [];
  t.after(() => Promise.all(dependents.map((d) => d.stop())));
  for (let i = 0; i < 3; i++) dependents.push(await startFixture('watcher', list, ['flood']));
  const stub = await startStub();
  t.after(() => stub.close());

  const acknowledged: string[] = [];
  let n = 0;
  let flowing = true;
  const flood = async (lane: number) => {
    while (flowing) {
      const target = (n + lane) % 2 === 0 ? a : b;
      const serviceURL = `${stub.url}/i/${n++}`;
      const res = await fetch(`${target.url}/services`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ serviceName: 'flood', serviceURL, heartbeatURL: `${stub.url}/heartbeat`, requiredServices: [] }),
        signal: AbortSignal.timeout(3000),
      }).catch(() => undefined);
      if (res?.status === 200) acknowledged.push(serviceURL);
      await res?.text().catch(() => undefined);
    }
  };
  const lanes = [0, 1, 2, 3].map(flood);
  await waitFor(() => acknowledged.length >= 150, 'registrations to flow');
  await a.stop('SIGKILL');
  const killedAt = Date.now();
  flowing = false;
  await Promise.all(lanes);

  const listed = new Set(await upUrls(b, 'flood'));
  assert.deepEqual(acknowledged.filter((url) => !listed.has(url)), [], 'every acknowledged registration is listed by the survivor');
  const truth = await upUrls(b, 'flood');
  await waitFor(
    async () => (await Promise.all(dependents.map(providersOf))).every((p) => JSON.stringify([...(p.flood ?? [])].sort()) === JSON.stringify(truth)),
    'every dependent to agree with the truth',
    1000,
  );
  t.diagnostic(`${acknowledged.length} registrations acknowledged; dependents agreed ${Date.now() - killedAt} ms after the kill`);
  assert.equal(await replicaCount(b), 1, 'the survivor saw the kill');
});

test('a service with REGISTRY_URL=a,b registers, renews and gets patches with either replica dead', { skip }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  let [a, b] = await replicas(etcd, ['a', 'b']);
  t.after(() => Promise.all([a.stop(), b.stop()]));
  await waitFor(async () => (await replicaCount(a)) === 2, 'both replicas to see each other');
  const aPort = new URL(a.url).port;
  const list = `${a.url},${b.url}`;

  // With a dead: registration (with a lease, renewed) and patches come through b.
  await a.stop('SIGKILL');
  const watcher = await startFixture('watcher', list, ['storage'], { LEASE_TTL_SECONDS: '3' });
  t.after(() => watcher.stop());
  const first = await startFixture('storage', list);
  t.after(() => first.stop());
  await waitFor(async () => (await providersOf(watcher)).storage?.includes(first.url), 'a patch through b');
  await waitFor(async () => (await upUrls(b, 'watcher')).length === 1, 'the watcher registered through b');

  // a comes back and b dies: renewals and patches move to a.
  a = await startRegistry({ REGISTRY_STORE: 'etcd', ETCD_ENDPOINTS: etcd.endpoints, REGISTRY_REPLICA_ID: 'a', PORT: aPort });
  await waitFor(async () => (await replicaCount(a)) === 2, 'a back in the set');
  await b.stop('SIGKILL');
  await waitFor(async () => (await replicaCount(a)) === 1, 'a to see b gone');
  const second = await startFixture('storage', list);
  t.after(() => second.stop());
  await waitFor(async () => (await providersOf(watcher)).storage?.includes(second.url), 'a patch through a', 5000);
  await first.stop();
  await waitFor(async () => !(await providersOf(watcher)).storage?.includes(first.url), 'the removal through a', 5000);
  // The lease keeps being renewed through a: after several lease lengths the watcher is still up.
  await new Promise((resolve) => setTimeout(resolve, 4000));
  assert.deepEqual(await upUrls(a, 'watcher'), [watcher.url], 'the lease is renewed through a');
});
