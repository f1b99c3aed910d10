/**
 * Registry replicas on a real etcd: a replica that owns lease-registered instances (no HTTP heartbeat) is
 * SIGSTOPped. The other takes them over; they stay up while they renew (through REGISTRY_URL=a,b, past the
 * paused one), go down when they stop, and the paused one, woken, can't undo the newer state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, providersOf, startFixture, waitFor, type Proc } from './helpers.ts';
import { instanceIdOf, replicaCount, replicaIds, startReplicas } from './registryReplicas.ts';
import { skipUnlessEngine, startEtcd } from '../harness/etcd.ts';
import { rendezvousOwner } from '../registry/replicaSet.ts';

const skip = skipUnlessEngine('etcd');
const REPLICA_LEASE_MS = 2000;
// Renewed every third of it; a renewal sent to the paused replica first waits out the client's 3 s timeout
// before it moves on, so the lease must outlast a third of it plus 3 s.
const TTL_S = 8;

interface LeasedView {
  serviceURL: string;
  state: string;
  upSince?: string;
  leaseExpiresAt?: string;
}

async function leasedOn(registry: Proc): Promise<Map<string, LeasedView>> {
  const { body } = await getJson<{ instances: LeasedView[] }>(`${registry.url}/services?name=leased`);
  return new Map(body.instances.map((i) => [i.serviceURL, i]));
}

const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
const sorted = (urls: Iterable<string>) => [...urls].sort();

test('SIGSTOP of a replica owning leased instances: the other keeps them up while they renew, down when they stop; the woken one undoes nothing', { skip }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const [a, b] = await startReplicas(etcd, ['a', 'b']);
  t.after(() => Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]));
  t.after(() => a.child.kill('SIGCONT'));
  await waitFor(async () => (await replicaCount(a)) === 2 && (await replicaCount(b)) === 2, 'both replicas to see each other');

  // Leased services that name the replica to be paused (a) first, until a owns two of them.
  const leased: { proc: Proc; id: string; owner: string }[] = [];
  t.after(() => Promise.all(leased.map((l) => l.proc.stop('SIGKILL'))));
  while (leased.filter((l) => l.owner === 'a').length < 2 || leased.filter((l) => l.owner === 'b').length < 1) {
    const proc = await startFixture('leased', `${a.url},${b.url}`, [], { LEASE_TTL_SECONDS: String(TTL_S) });
    const id = await instanceIdOf(proc);
    leased.push({ proc, id, owner: rendezvousOwner(['a', 'b'], id)! });
  }
  const watcher = await startFixture('watcher', `${b.url},${a.url}`, ['leased']);
  t.after(() => watcher.stop());
  const everyUrl = sorted(leased.map((l) => l.proc.url));
  await waitFor(async () => same(sorted((await providersOf(watcher)).leased ?? []), everyUrl), 'the watcher to see every leased instance');
  const upSinceBefore = new Map([...(await leasedOn(b)).values()].map((i) => [i.serviceURL, i.upSince]));

  a.child.kill('SIGSTOP');
  const stoppedAt = Date.now();
  await waitFor(async () => same(await replicaIds(b), ['b']), 'b to drop the paused replica', REPLICA_LEASE_MS + 1000);
  t.diagnostic(`b dropped a ${Date.now() - stoppedAt} ms after SIGSTOP`);

  // Renewed through b only (a is paused) until every lease reaches two lifetimes past the pause: each would
  // have lapsed twice over had its renewals not moved on to b, or had b not watched the leases it adopted.
  const renewedPast = stoppedAt + 2 * TTL_S * 1000;
  await waitFor(
    async () => [...(await leasedOn(b)).values()].every((i) => Date.parse(i.leaseExpiresAt ?? '') > renewedPast),
    'every lease to be renewed through b',
    3 * TTL_S * 1000,
    200,
  );
  for (const [url, view] of await leasedOn(b)) {
    assert.equal(view.state, 'up', `${url} stays up while it renews`);
    assert.equal(view.upSince, upSinceBefore.get(url), `${url} was never down meanwhile`);
  }

  // The ones a owned (b adopted them) stop renewing: b marks them down once their leases lapse.
  const stopped = leased.filter((l) => l.owner === 'a');
  const renewing = leased.filter((l) => l.owner !== 'a');
  for (const l of stopped) await l.proc.stop('SIGKILL');
  const stoppedUrls = new Set(stopped.map((l) => l.proc.url));
  const renewingUrls = sorted(renewing.map((l) => l.proc.url));
  const killedAt = Date.now();
  await waitFor(
    async () => [...(await leasedOn(b)).values()].every((i) => (i.state === 'down') === stoppedUrls.has(i.serviceURL)),
    'b to mark the instances that stopped renewing down',
    TTL_S * 1000 + 2000,
  );
  t.diagnostic(`down ${Date.now() - killedAt} ms after they stopped renewing (lease ${TTL_S} s)`);
  await waitFor(async () => same(sorted((await providersOf(watcher)).leased ?? []), renewingUrls), 'the watcher to drop them');

  // a wakes with the leases as they were before its pause, and with renewals that waited in its sockets
  // through it (their clients gave up and went to b): it takes none of those (it is past its lease), its
  // stale verdicts lose to newer revisions, and it learns the newer state from its watch.
  const logAtWake = a.output().length;
  a.child.kill('SIGCONT');
  await waitFor(async () => (await replicaCount(a)) === 2 && (await replicaCount(b)) === 2, 'the woken replica back in the set');
  const wokenAt = Date.now();
  // Two renewals of every live lease after the wake, so late writes have landed and been answered.
  await waitFor(
    async () => [...(await leasedOn(b)).values()].filter((i) => !stoppedUrls.has(i.serviceURL)).every((i) => Date.parse(i.leaseExpiresAt ?? '') > wokenAt + TTL_S * 1000 + (2 * TTL_S * 1000) / 3),
    'two renewals after the wake',
    2 * TTL_S * 1000,
    200,
  );
  for (const replica of [a, b]) {
    const views = await leasedOn(replica);
    const name = replica === a ? 'the woken replica' : 'the survivor';
    assert.deepEqual(sorted([...views.values()].filter((i) => i.state === 'up').map((i) => i.serviceURL)), renewingUrls, `${name} lists the renewing ones up`);
    for (const url of stoppedUrls) assert.equal(views.get(url)?.state, 'down', `${name} keeps ${url} down`);
    for (const url of renewingUrls) assert.equal(views.get(url)?.upSince, upSinceBefore.get(url), `${name}: ${url} was never down`);
  }
  assert.deepEqual(sorted((await providersOf(watcher)).leased ?? []), renewingUrls, 'the watcher still agrees');
  const refused = a.output().slice(logAtWake).split('\n').filter((line) => /not saving/.test(line)).length;
  t.diagnostic(`the woken replica's stale writes refused by etcd: ${refused}`);
});
