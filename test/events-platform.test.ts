/** events/withEvents.ts: a service declares its topics when it starts, and publishes through eventsOf(svc). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startProcess, startRegistry, waitFor, type Proc } from './helpers.ts';
import { metricValue, startEventsService, subscriberViews } from './events-helpers.ts';

function startEventful(registryUrl: string, name: string, subscribe: string[] = []): Promise<Proc> {
  return startProcess('test/fixtures/eventsService.ts', { env: { NAME: name, SUBSCRIBE: subscribe.join(','), REGISTRY_URL: registryUrl, LOG_LEVEL: 'info' } });
}

test('withEvents mounts a handler per declared topic, and eventsOf(svc).publish batches what is published at once', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const events = await startEventsService(registry.url);
  t.after(() => events.stop());
  const sender = await startEventful(registry.url, 'sender');
  t.after(() => sender.stop());
  const receiver = await startEventful(registry.url, 'receiver', ['demo.*']);
  t.after(() => receiver.stop());
  await waitFor(async () => (await subscriberViews(events.url)).get(`instance:${receiver.url}`)?.state === 'up', 'the receiver subscribed by its metadata');
  await waitFor(async () => (await getJson(`${sender.url}/health`)).body.providers.events?.length > 0, 'the sender knows the events service');

  const commitsBefore = await metricValue(events.url, 'events_journal_commits');
  const { status, body } = await getJson(`${sender.url}/publish?topic=demo.batch&count=200`, { method: 'POST' });
  assert.equal(status, 200);
  assert.deepEqual(body.refs.map((r: { seq: number }) => r.seq), body.refs.map((_: unknown, i: number) => i + 1));
  assert.ok((await metricValue(events.url, 'events_journal_commits')) - commitsBefore <= 5, '200 events in a few requests, not 200');
  await getJson(`${sender.url}/publish?topic=other.topic&count=1`, { method: 'POST' });

  const got = (await waitFor(async () => {
    const list = (await getJson(`${receiver.url}/received`)).body.events as { topic: string; payload: { i: number } }[];
    return list.length >= 200 ? list : undefined;
  }, 'the receiver handled all 200'))!;
  assert.deepEqual(got.map((e) => e.payload.i), got.map((_, i) => i), 'in order, each once');
  assert.ok(got.every((e) => e.topic === 'demo.batch'), 'only the declared topics reach the handler');
});

test('emit() with no events service up drops at once and counts it; the service works on', { timeout: 60_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const lonely = await startEventful(registry.url, 'lonely');
  t.after(() => lonely.stop());
  const { status, body } = await getJson(`${lonely.url}/emit?topic=demo.alone`, { method: 'POST' });
  assert.equal(status, 200);
  assert.equal(body.available, false);
  assert.equal(await metricValue(lonely.url, 'events_client_dropped_total{reason="absent"'), 1);
  assert.equal(await metricValue(lonely.url, 'events_client_buffered'), 0, 'nothing held for an events service that is not there');
});
