/**
 * Topics between registered services: POST /publish with ids and per-topic sequence, broadcast to
 * every subscribing instance, and balanced delivery across the instances of one service, with failover.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startRegistry, waitFor, type Proc } from './helpers.ts';
import { metricValue, publish, receivedBy, startEventsService, startSubscriberService } from './events-helpers.ts';

let registry: Proc;
let events: Proc;

before(async () => {
  registry = await startRegistry();
  events = await startEventsService(registry.url);
});
after(async () => {
  await events?.stop();
  await registry?.stop();
});

/** Waits until the events service delivers to these subscribers (it learns them from the registry). */
async function subscribed(keys: string[]): Promise<void> {
  await waitFor(async () => {
    const { body } = await getJson(`${events.url}/subscribers`);
    const up = new Set((body.subscribers as { key: string; state: string }[]).filter((s) => s.state === 'up').map((s) => s.key));
    return keys.every((k) => up.has(k));
  }, `subscribers ${keys.join(', ')}`);
}

test('POST /publish gives every event an id and a per-topic sequence; a batch is accepted whole or not at all', async () => {
  const one = await publish(events.url, { topic: 'seq.a', payload: { n: 1 } });
  assert.equal(one.status, 202);
  assert.equal(one.body.accepted, 1);
  const batch = await publish(events.url, [
    { topic: 'seq.a', payload: 2 },
    { topic: 'seq.b', payload: 'x' },
    { topic: 'seq.a' },
  ]);
  assert.equal(batch.status, 202);
  const refs = [one.body.events[0], ...batch.body.events];
  assert.deepEqual(refs.map((r: { topic: string; seq: number }) => [r.topic, r.seq]), [['seq.a', 1], ['seq.a', 2], ['seq.b', 1], ['seq.a', 3]]);
  const ids = refs.map((r: { id: number }) => r.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  assert.equal(new Set(ids).size, ids.length);

  const bad = await publish(events.url, [{ topic: 'seq.a', payload: 4 }, { topic: 'no spaces' }]);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'invalid_topic');
  assert.match(bad.body.error.message, /\[1\]\.topic/);
  const next = await publish(events.url, { topic: 'seq.a' });
  assert.equal(next.body.events[0].seq, 4, 'the refused batch took no sequence number');
});

test('broadcast: three instances that subscribe to task.* each get every task event, in order; others get none', async (t) => {
  const instances = await Promise.all([0, 1, 2].map(() => startSubscriberService(registry.url, { name: 'watcher', broadcast: ['task.*'] })));
  const bystander = await startSubscriberService(registry.url, { name: 'bystander', broadcast: ['instance.down'] });
  t.after(() => Promise.all([...instances, bystander].map((p) => p.stop())));
  await subscribed([...instances, bystander].map((p) => `instance:${p.url}`));

  const published: { id: number; topic: string }[] = [];
  for (let round = 0; round < 10; round++) {
    const answer = await publish(events.url, [
      { topic: 'task.created', payload: { task: round } },
      { topic: 'other.thing', payload: { round } },
      { topic: 'task.done', payload: { task: round } },
    ]);
    assert.equal(answer.status, 202);
    published.push(...answer.body.events.filter((e: { topic: string }) => e.topic.startsWith('task.')));
  }
  for (const instance of instances) {
    const got = (await waitFor(async () => {
      const list = await receivedBy(instance);
      return list.length >= published.length ? list : undefined;
    }, `${instance.url} to get ${published.length} events`))!;
    assert.deepEqual(got.map((e) => e.id), published.map((e) => e.id), 'every task event, once, in publish order');
    assert.deepEqual(got.map((e) => e.payload.task), published.map((_, i) => Math.floor(i / 2)));
    const created = got.filter((e) => e.topic === 'task.created').map((e) => e.seq);
    assert.deepEqual(created, created.map((_, i) => created[0] + i), 'per-topic sequence without gaps');
  }
  assert.deepEqual(await receivedBy(bystander), []);

  const published_ = await metricValue(events.url, 'events_published_total');
  const delivered = await metricValue(events.url, 'events_delivered_total');
  assert.ok(published_ >= 30, `events_published_total ${published_}`);
  assert.ok(delivered >= 3 * published.length, `events_delivered_total ${delivered} (one per subscriber)`);
  assert.equal(await metricValue(events.url, `events_queue_depth{subscriber="instance:${instances[0].url}"`), 0);
  assert.equal(await metricValue(events.url, 'events_subscribers{kind="instance"'), 4);
});

test('balanced: each event goes to one of two instances; when one is killed, the other gets the rest', async (t) => {
  const a = await startSubscriberService(registry.url, { name: 'jobrunner', balanced: ['job.*'] });
  const b = await startSubscriberService(registry.url, { name: 'jobrunner', balanced: ['job.*'] });
  t.after(() => Promise.all([a.stop(), b.stop()]));
  await waitFor(async () => {
    const { body } = await getJson(`${events.url}/subscribers`);
    const group = (body.subscribers as { key: string; instances?: { state: string }[] }[]).find((s) => s.key === 'group:jobrunner');
    return group?.instances?.filter((i) => i.state === 'up').length === 2;
  }, 'the jobrunner group with two instances');

  const ids: number[] = [];
  const both = async () => [...(await receivedBy(a)), ...(await receivedBy(b))];
  for (let i = 0; i < 30; i++) {
    ids.push((await publish(events.url, { topic: 'job.run', payload: { i } })).body.events[0].id);
    await waitFor(async () => (await both()).length === ids.length, `job ${i} delivered`);
  }
  const [gotA, gotB] = [await receivedBy(a), await receivedBy(b)];
  assert.ok(gotA.length > 0 && gotB.length > 0, `both instances took work (${gotA.length} and ${gotB.length})`);
  assert.deepEqual([...gotA, ...gotB].map((e) => e.id).sort((x, y) => x - y), ids, 'each event to exactly one instance');
  for (const got of [gotA, gotB]) assert.deepEqual(got.map((e) => e.id), [...got.map((e) => e.id)].sort((x, y) => x - y), 'in order');

  a.child.kill('SIGKILL');
  await a.exited;
  const later: number[] = [];
  for (let i = 0; i < 20; i++) later.push((await publish(events.url, { topic: 'job.run', payload: { i: 30 + i } })).body.events[0].id);
  const survivor = (await waitFor(async () => {
    const list = await receivedBy(b);
    return list.length >= gotB.length + later.length ? list : undefined;
  }, 'the surviving instance to get every later job'))!;
  assert.deepEqual(survivor.slice(gotB.length).map((e) => e.id), later, 'the rest, in order, once, none lost');
});
