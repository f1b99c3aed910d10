/**
 * Registry replicas on a real etcd under faults: a replica paused past its lease, etcd away, a compaction
 * while one replica's watch is cut off, and the etcd leader killed in a 3-member cluster.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson, providersOf, startFixture, startStub, waitFor, type Proc, type Stub } from './helpers.ts';
import { instanceIdOf, listed, register, replicaCount, replicaIds, takeoverResyncsIn, startReplica, startReplicas, upUrls } from './registryReplicas.ts';
import { skipUnlessEngine, startEtcd } from '../harness/etcd.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';
import { rendezvousOwner } from '../registry/replicaSet.ts';

const skip = skipUnlessEngine('etcd');
const LEASE_MS = 2000;

/** Starts stubs registered as `pool` until `owner` owns at least `atLeast` of them (ownership is a hash of the id). */
async function poolOwnedBy(registry: Proc, ids: string[], owner: string, atLeast: number, t: { after(fn: () => unknown): void }): Promise<{ stub: Stub; id: string; owner: string }[]> {
  const pool: { stub: Stub; id: string; owner: string }[] = [];
  while (pool.filter((p) => p.owner === owner).length < atLeast || pool.length < 2 * atLeast) {
    const stub = await startStub();
    t.after(() => stub.close());
    const answer = await register(registry, stub.registration('pool'));
    assert.equal(answer.status, 200);
    pool.push({ stub, id: answer.instanceId!, owner: rendezvousOwner(ids, answer.instanceId!)! });
  }
  return pool;
}

const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);

/** One etcd, replicas a and b that see each other, and a service requiring 'pool' that knows both. */
async function twoReplicasAndAWatcher(t: TestContext) {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const [a, b] = await startReplicas(etcd, ['a', 'b']);
  t.after(() => Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]));
  await waitFor(async () => (await replicaCount(a)) === 2 && (await replicaCount(b)) === 2, 'both replicas to see each other');
  const watcher = await startFixture('watcher', `${a.url},${b.url}`, ['pool']);
  t.after(() => watcher.stop());
  // "listening on" comes before the registration: wait until both replicas list the watcher.
  await waitFor(async () => (await listed(a, 'watcher')).length === 1 && (await listed(b, 'watcher')).length === 1, 'both replicas to list the watcher');
  return { etcd, a, b, watcher };
}

test('SIGSTOP of a replica for 5 s: the other takes over within its lease plus 1 s; the woken one changes nothing wrong', { skip }, async (t) => {
  const { a, b, watcher } = await twoReplicasAndAWatcher(t);
  // The paused one is the watcher's owner, so its subscriber is adopted.
  const victimId = rendezvousOwner(['a', 'b'], await instanceIdOf(watcher))!;
  const [victim, survivor] = victimId === 'a' ? [a, b] : [b, a];
  t.after(() => victim.child.kill('SIGCONT'));
  const pool = await poolOwnedBy(survivor, ['a', 'b'], victimId, 2, t);
  await waitFor(async () => (await providersOf(watcher)).pool?.length === pool.length, 'the watcher to see the pool');

  const logAtStop = watcher.output().length;
  victim.child.kill('SIGSTOP');
  const stoppedAt = Date.now();
  await waitFor(async () => same(await replicaIds(survivor), [survivor === a ? 'a' : 'b']), 'the survivor to drop the paused replica', LEASE_MS + 1000);
  const takeoverMs = Date.now() - stoppedAt;

  // While it sleeps: one of its instances dies (the survivor marks it down) and a new one registers.
  const dead = pool.find((p) => p.owner === victimId)!;
  await dead.stub.close();
  const fresh = await startStub();
  t.after(() => fresh.close());
  assert.equal((await register(survivor, fresh.registration('pool'))).status, 200);
  const truth = [...pool.filter((p) => p !== dead).map((p) => p.stub.url), fresh.url].sort();
  await waitFor(async () => same(await upUrls(survivor, 'pool'), truth), 'the survivor to mark the dead one down');
  await waitFor(async () => same([...((await providersOf(watcher)).pool ?? [])].sort(), truth), 'the adopted watcher to follow the survivor');
  assert.equal(takeoverResyncsIn(watcher.output().slice(logAtStop)), 1, 'the adopted watcher re-synced once');

  await sleep(Math.max(0, stoppedAt + 5000 - Date.now()));
  victim.child.kill('SIGCONT');
  const heartbeatsAtWake = [...pool, { stub: fresh }].filter((p) => p !== dead).map((p) => p.stub.heartbeats);
  await waitFor(async () => (await replicaCount(victim)) === 2 && (await replicaCount(survivor)) === 2, 'the woken replica back in the set');
  // Long enough for its stale timers, late writes and queued patches to have run: several checks of every live instance.
  const live = [...pool, { stub: fresh }].filter((p) => p !== dead);
  await waitFor(() => live.every((p, i) => p.stub.heartbeats >= heartbeatsAtWake[i] + 6), 'several check rounds after the wake');

  const deadSeen: (string | undefined)[] = [];
  for (const replica of [victim, survivor]) {
    assert.deepEqual(await upUrls(replica, 'pool'), truth, `${replica === victim ? 'the woken' : 'the surviving'} replica lists the truth`);
    deadSeen.push((await listed(replica, 'pool')).find((i) => i.serviceURL === dead.stub.url)?.state);
  }
  // Down, or gone if the new instance on its host took its place (it may register before or after the dead one is seen down).
  assert.ok(deadSeen.every((state) => state === 'down' || state === undefined), `the dead instance is not brought back: ${deadSeen}`);
  assert.equal(deadSeen[0], deadSeen[1], 'both replicas list the dead instance alike');
  await waitFor(async () => same([...((await providersOf(watcher)).pool ?? [])].sort(), truth), 'the watcher to agree after the wake', 3000);
  t.diagnostic(`takeover ${takeoverMs} ms after SIGSTOP (lease ${LEASE_MS} ms)`);
});

test('etcd unreachable: reads answer from memory, writes answer 503 with Retry-After, and the replicas recover by themselves', { skip }, async (t) => {
  const { etcd, a, b, watcher } = await twoReplicasAndAWatcher(t);
  const before = await startStub();
  t.after(() => before.close());
  assert.equal((await register(a, before.registration('pool'))).status, 200);
  await waitFor(async () => same(await upUrls(b, 'pool'), [before.url]), 'b to learn of it');
  const listingBefore = await getJson(`${a.url}/services`);

  await etcd.members[0].kill();
  for (const replica of [a, b]) {
    const { status, body } = await getJson(`${replica.url}/services`);
    assert.equal(status, 200, 'reads answer from memory');
    assert.deepEqual(body.instances.map((i: { serviceURL: string }) => i.serviceURL).sort(), listingBefore.body.instances.map((i: { serviceURL: string }) => i.serviceURL).sort());
  }
  const during = await startStub();
  t.after(() => during.close());
  const refused = await register(a, during.registration('pool'));
  assert.equal(refused.status, 503, 'a write answers 503');
  assert.equal(refused.error?.code, 'store_unavailable');
  assert.ok(Number(refused.headers.get('retry-after')) > 0, 'with Retry-After');
  await waitFor(async () => (await getJson(`${b.url}/health`)).body.etcd?.status === 'unreachable', 'b to say etcd is unreachable');

  await etcd.members[0].restart();
  const restartedAt = Date.now();
  await waitFor(async () => (await register(a, during.registration('pool'))).status === 200, 'a write through a to be kept again', 20_000, 200).catch((err) => {
    t.diagnostic(a.output().split('\n').filter((l) => !/debug/.test(l)).slice(-40).join('\n'));
    throw err;
  });
  const after = await startStub();
  t.after(() => after.close());
  await waitFor(async () => (await register(b, after.registration('pool'))).status === 200, 'a write through b to be kept again', 20_000, 200);
  const truth = [before.url, during.url, after.url].sort();
  // Each learns the other's write through its resumed watch; the watcher is patched by its owner.
  await waitFor(async () => same(await upUrls(a, 'pool'), truth) && same(await upUrls(b, 'pool'), truth), 'both replicas to list the truth');
  await waitFor(async () => same([...((await providersOf(watcher)).pool ?? [])].sort(), truth), 'the watcher to follow');
  await waitFor(async () => (await replicaCount(a)) === 2 && (await replicaCount(b)) === 2, 'both replicas in the set again', 20_000);
  for (const replica of [a, b]) assert.equal((await getJson(`${replica.url}/health`)).body.etcd?.status, 'ok');
  t.diagnostic(`writes kept again ${Date.now() - restartedAt} ms after etcd was restarted (convergence included)`);
});

test("compaction while one replica's watches are cut off: it lists again, its subscribers converge, it follows the replica set", { skip }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const proxy = await startTcpProxy(etcd.members[0].clientUrl);
  t.after(() => proxy.close());
  // A lease longer than the cut, so the cut-off replica keeps its share and its subscribers depend on its re-list.
  const env = { REGISTRY_REPLICA_LEASE_SECONDS: '30' };
  const a = await startReplica(proxy.url, 'a', env);
  const b = await startReplica(etcd, 'b', env);
  t.after(() => Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]));
  await waitFor(async () => (await replicaCount(a)) === 2 && (await replicaCount(b)) === 2, 'both replicas to see each other');
  const watchers: Proc[] = [];
  t.after(() => Promise.all(watchers.map((w) => w.stop())));
  const ownedByA: Proc[] = [];
  while (ownedByA.length === 0) {
    const watcher = await startFixture('watcher', `${a.url},${b.url}`, ['pool']);
    watchers.push(watcher);
    if (rendezvousOwner(['a', 'b'], await instanceIdOf(watcher)) === 'a') ownedByA.push(watcher);
  }
  const gone = await startStub();
  const kept = await startStub();
  t.after(() => Promise.all([gone.close(), kept.close()]));
  const goneId = (await register(b, gone.registration('pool'))).instanceId!;
  assert.equal((await register(b, kept.registration('pool'))).status, 200);
  await waitFor(async () => (await providersOf(ownedByA[0])).pool?.length === 2, "a's subscriber to see the pool");

  const logAtCut = a.output().length;
  proxy.cut();
  await waitFor(async () => (await getJson(`${a.url}/health`)).body.etcd?.status === 'unreachable', "a to notice its watch is cut", 10_000);
  const added = await startStub();
  t.after(() => added.close());
  assert.equal((await register(b, added.registration('pool'))).status, 200);
  const res = await fetch(`${b.url}/services/${goneId}`, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  await etcd.compact();
  proxy.restore();

  const truth = [kept.url, added.url].sort();
  await waitFor(() => a.output().slice(logAtCut).includes('listing the registrations again'), 'a to list again after the compaction', 20_000);
  await waitFor(async () => same(await upUrls(a, 'pool'), truth), 'a to list the truth', 10_000);
  for (const watcher of watchers) {
    await waitFor(async () => same([...((await providersOf(watcher)).pool ?? [])].sort(), truth), 'every subscriber to converge', 5000);
  }
  // Its watch of the replica set was compacted away too: it lists the set again and follows it from there.
  const c = await startReplica(etcd, 'c', env);
  t.after(() => c.stop('SIGKILL'));
  await waitFor(async () => same(await replicaIds(a), ['a', 'b', 'c']), 'a to see a replica that joined after the compaction', 10_000);
});

test('a 3-member etcd: kill the leader during registrations; they resume after the election and no watch event is missed', { skip }, async (t) => {
  const etcd = await startEtcd(3);
  t.after(() => etcd.stop());
  const [a, b] = await startReplicas(etcd, ['a', 'b']);
  t.after(() => Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]));
  await waitFor(async () => (await replicaCount(a)) === 2 && (await replicaCount(b)) === 2, 'both replicas to see each other');
  const stub = await startStub();
  t.after(() => stub.close());

  // One writer through a, in order: registrations, and every fifth step a deregistration of an earlier one.
  // b hears of all of it only through its etcd watch.
  const expected = new Set<string>();
  const ids = new Map<string, string>();
  const acks: number[] = [];
  let killedAt = 0;
  const write = async (step: number): Promise<void> => {
    for (;;) {
      try {
        if (step % 5 === 4) {
          const url = [...expected][0];
          const res = await fetch(`${a.url}/services/${ids.get(url)}`, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
          await res.text();
          if (res.status === 200) return void expected.delete(url);
        } else {
          const url = `${stub.url}/i/${step}`;
          const answer = await register(a, { serviceName: 'seq', serviceURL: url, heartbeatURL: `${stub.url}/heartbeat`, requiredServices: [] });
          if (answer.status === 200) {
            ids.set(url, answer.instanceId!);
            return void expected.add(url);
          }
        }
      } catch {
        // no answer in time: the same step again
      }
      await sleep(50);
    }
  };
  for (let step = 0; ; step++) {
    await write(step);
    acks.push(Date.now());
    if (step === 60) {
      const leader = await etcd.leader();
      killedAt = Date.now();
      await leader.kill();
    }
    if (killedAt && acks.filter((at) => at > killedAt).length >= 60) break;
  }
  const gaps = acks.slice(1).map((at, i) => at - acks[i]);
  const gapMs = Math.max(...gaps.slice(55));
  const truth = [...expected].sort();
  await waitFor(async () => same(await upUrls(b, 'seq'), truth), 'b, which only watched, to list exactly what a wrote', 10_000).catch(() => undefined);
  assert.deepEqual(await upUrls(b, 'seq'), truth, 'no watch event missed');
  assert.deepEqual(await upUrls(a, 'seq'), truth);
  t.diagnostic(`${acks.length} writes; the longest gap around the leader kill ${gapMs} ms`);
});
