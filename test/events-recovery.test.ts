/**
 * Order and no loss: a subscriber that is away gets what it missed when it returns (in order, once),
 * and a subscriber that hangs delays only itself.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, rawRequest, startRegistry, waitFor, type Proc } from './helpers.ts';
import { metricValue, publish, receivedBy, startEventsService, startRecorder, startSubscriberService, subscriberViews } from './events-helpers.ts';

let registry: Proc;
let events: Proc;

before(async () => {
  registry = await startRegistry();
  // A keep-alive far longer than the absences below; retries every 300 ms at most, so an absence of a
  // few seconds is many failed deliveries, the same as one of 20 s with the default backoff.
  events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '20000', EVENTS_DELIVERY_TIMEOUT_MS: '10000' });
});
after(async () => {
  await events?.stop();
  await registry?.stop();
});

const keepAlive = (address: string) => rawRequest(`${events.url}/registerAndKeepAlive?address=${address}`, { method: 'POST' });
const send = (text: string) => rawRequest(`${events.url}/sendMessage`, { method: 'POST', body: text, headers: { 'content-type': 'text/plain' } });

test('a reference subscriber that is away gets every message it missed when it is back, in order, once', async (t) => {
  let recorder = await startRecorder();
  const { port, address } = recorder;
  t.after(() => recorder.close());
  await keepAlive(address);
  await send('before');
  await waitFor(() => recorder.received.length === 1, 'the first message');
  await recorder.close();

  const retriedBefore = await metricValue(events.url, 'events_retried_total');
  const missed = Array.from({ length: 50 }, (_, i) => `missed ${i}`);
  for (const text of missed) assert.equal((await send(text)).status, 200);
  // Away for a while: deliveries keep failing and are retried with backoff.
  await waitFor(async () => (await metricValue(events.url, 'events_retried_total')) >= retriedBefore + 8, 'failed deliveries to be retried', 20_000);
  const away = (await subscriberViews(events.url)).get(`address:${address}`)!;
  assert.equal(away.state, 'failing');
  assert.equal(away.queued, 50);
  assert.equal(await metricValue(events.url, `events_queue_depth{subscriber="address:${address}"`), 50, 'queue depth per subscriber on /metrics');

  recorder = await startRecorder({ port });
  await keepAlive(address);
  await waitFor(() => recorder.received.length >= 50, 'the missed messages', 20_000);
  assert.deepEqual(recorder.texts(), missed, 'every missed message, in order, once');
  await send('after');
  await waitFor(() => recorder.received.length === 51, 'the next message');
  assert.equal(recorder.texts()[50], 'after');
  await rawRequest(`${events.url}/deregister?address=${address}`, { method: 'DELETE' });
});

test('a registered instance that was killed and comes back on its URL gets what it missed, in order, once', async (t) => {
  const port = await freePort();
  let instance = await startSubscriberService(registry.url, { name: 'auditor', broadcast: ['audit.>'], port });
  t.after(() => instance.stop());
  const key = `instance:${instance.url}`;
  await waitFor(async () => (await subscriberViews(events.url)).get(key)?.state === 'up', 'the auditor subscription');
  await publish(events.url, { topic: 'audit.start', payload: 0 });
  await waitFor(async () => (await receivedBy(instance)).length === 1, 'the first event');

  instance.child.kill('SIGKILL');
  await instance.exited;
  await waitFor(async () => (await subscriberViews(events.url)).get(key)?.state === 'down', 'the registry to see it down, and the events service with it');
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) {
    const answer = await publish(events.url, [{ topic: 'audit.login.ok', payload: { i } }, { topic: 'audit.logout', payload: { i } }]);
    ids.push(...answer.body.events.map((e: { id: number }) => e.id));
  }
  assert.equal((await subscriberViews(events.url)).get(key)!.queued, 40, 'held while it is down');

  instance = await startSubscriberService(registry.url, { name: 'auditor', broadcast: ['audit.>'], port });
  const got = (await waitFor(async () => {
    const list = await receivedBy(instance);
    return list.length >= ids.length ? list : undefined;
  }, 'the missed events', 20_000))!;
  assert.deepEqual(got.map((e) => e.id), ids, 'every missed event, in order, once');
});

test('a subscriber that hangs does not delay the others', async (t) => {
  const hanging = await startRecorder({ hang: true });
  const healthy = await startRecorder();
  t.after(() => Promise.all([hanging.close(), healthy.close()]));
  await keepAlive(hanging.address);
  await keepAlive(healthy.address);
  const started = Date.now();
  for (let i = 0; i < 20; i++) await send(`m${i}`);
  await waitFor(() => healthy.received.length === 20, 'the healthy subscriber to get every message', 5000);
  const took = Date.now() - started;
  assert.ok(took < 5000, `the healthy subscriber had all 20 after ${took} ms`);
  assert.equal(hanging.received.length, 1, 'the hanging one is still held on its first message (10 s delivery timeout)');
  assert.equal((await subscriberViews(events.url)).get(`address:${hanging.address}`)!.queued, 20);
  for (const r of [hanging, healthy]) await rawRequest(`${events.url}/deregister?address=${r.address}`, { method: 'DELETE' });
});
