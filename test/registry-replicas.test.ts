/**
 * Registry replicas on a real etcd (REGISTRY_STORE=etcd): what one replica acknowledges survives its
 * SIGKILL, the survivor takes over checks and patches at once, and services given REGISTRY_URL=a,b carry on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, providersOf, startFixture, startRegistry, startStub, waitFor, type Proc } from './helpers.ts';
import { instanceIdOf, listed, register, replicaCount, takeoverResyncsIn, startReplicas, upUrls } from './registryReplicas.ts';
import { skipUnlessEngine, startEtcd, type EtcdCluster } from '../harness/etcd.ts';
import { rendezvousOwner } from '../registry/replicaSet.ts';

const skip = skipUnlessEngine('etcd');
const replicas = (etcd: EtcdCluster, ids: string[]) => startReplicas(etcd, ids);

test('kill -9 of one of two replicas while registrations flow: nothing acknowledged is lost, dependents agree with the truth within 1 s, each adopted one re-synced once', { skip }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const [first, second] = await replicas(etcd, ['a', 'b']);
  t.after(() => Promise.all([first.stop('SIGKILL'), second.stop('SIGKILL')]));
  await waitFor(async () => (await replicaCount(first)) === 2 && (await replicaCount(second)) === 2, 'both replicas to see each other');
  const list = `${first.url},${second.url}`;
  const dependents: Proc[] = [];
  t.after(() => Promise.all(dependents.map((d) => d.stop())));
  for (let i = 0; i < 4; i++) dependents.push(await startFixture('watcher', list, ['flood']));
  const owners = await Promise.all(dependents.map(async (d) => rendezvousOwner(['a', 'b'], await instanceIdOf(d))));
  // The victim is the owner of the first dependent, so at least one subscriber is adopted.
  const [a, b] = owners[0] === 'a' ? [first, second] : [second, first];
  const victim = owners[0]!;
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
  const logsAtKill = dependents.map((d) => d.output().length);
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
  const expected = owners.map((owner) => (owner === victim ? 1 : 0));
  const resyncsNow = () => dependents.map((d, i) => takeoverResyncsIn(d.output().slice(logsAtKill[i])));
  // The log line may still be in the pipe when the table already agrees.
  await waitFor(() => JSON.stringify(resyncsNow()) === JSON.stringify(expected), 'the adopted subscribers to re-sync', 2000).catch(() => undefined);
  const resyncs = resyncsNow();
  t.diagnostic(`owners ${owners.join(',')}; re-syncs after the kill ${resyncs.join(',')}`);
  assert.deepEqual(resyncs, expected, 'each adopted subscriber re-synced once, the others not at all');
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

test('registrations that arrive while a commit is on its way share the next transaction (group commit), and every one is kept', { skip }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const [replica] = await replicas(etcd, ['a']);
  t.after(() => replica.stop());
  await waitFor(async () => (await replicaCount(replica)) === 1, 'the replica to join');
  const stub = await startStub();
  t.after(() => stub.close());
  const proposals = async () => {
    const text = await (await fetch(`${etcd.members[0].clientUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    return Number(/^etcd_server_proposals_committed_total (\d+)/m.exec(text)![1]);
  };
  const before = await proposals();
  const count = 256;
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < count) {
      const i = next++;
      statuses.push((await register(replica, { serviceName: 'grouped', serviceURL: `${stub.url}/g/${i}`, heartbeatURL: `${stub.url}/heartbeat`, requiredServices: [] })).status);
    }
  }));
  const committed = (await proposals()) - before;
  assert.deepEqual([...new Set(statuses)], [200]);
  assert.equal((await listed(replica, 'grouped')).length, count, 'every acknowledged registration is listed');
  // One transaction each would be 256 proposals (plus a few of the replica's own); 32 in flight share them.
  assert.ok(committed < count / 2, `${committed} proposals for ${count} registrations`);
});
