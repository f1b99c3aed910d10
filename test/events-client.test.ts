/** events/client.ts against a real events service: the batching publisher, and the /event endpoint's redelivery. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startRegistry, waitFor } from './helpers.ts';
import { EventPublisher, EventsClient, EventsError } from '../events/client.ts';
import { metricValue, publish, receivedBy, startEventsService, startSubscriberService, subscriberViews } from './events-helpers.ts';

test('the publisher batches what is published at once, waits out an events service that is not there yet, and keeps order', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const port = await freePort();
  const publisher = new EventPublisher(EventsClient.at(`http://127.0.0.1:${port}`, 2000), { maxBatch: 100 });
  await assert.rejects(publisher.publish('not a topic', 1), (err: EventsError) => err.status === 400 && err.code === 'invalid_topic');
  await assert.rejects(publisher.publish('ok.topic', { n: 10n }), (err: EventsError) => err.code === 'invalid_payload');

  const answers = Array.from({ length: 300 }, (_, i) => publisher.publish('client.batch', { i }));
  assert.equal(publisher.buffered, 300);
  const events = await startEventsService(registry.url, { PORT: String(port) });
  t.after(() => events.stop());
  const refs = await Promise.all(answers);
  assert.deepEqual(refs.map((r) => r.seq), refs.map((_, i) => i + 1), 'in publish order');
  // The registry publishes its own instance events there too, and they may fall between two batches:
  // ids are global, so they rise in publish order but need not be consecutive.
  assert.ok(refs.every((r, i) => i === 0 || r.id > refs[i - 1].id), 'ids rise in publish order');
  const topics = (await (await fetch(`${events.url}/topics`)).json()) as { topics: { topic: string; seq: number }[] };
  assert.equal(topics.topics.find((t) => t.topic === 'client.batch')?.seq, 300);
  assert.ok((await metricValue(events.url, 'events_journal_commits')) <= 10, 'a few commits, not one per event');
  await publisher.close();
});

test('a handler that throws gets the delivery again from its event on; what was handled is not handled twice', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const events = await startEventsService(registry.url);
  t.after(() => events.stop());
  const subscriber = await startSubscriberService(registry.url, { name: 'flaky', broadcast: ['flaky.*'], env: { FAIL_TIMES: '2' } });
  t.after(() => subscriber.stop());
  await waitFor(async () => (await subscriberViews(events.url)).get(`instance:${subscriber.url}`)?.state === 'up', 'the flaky subscription');
  const batch = Array.from({ length: 10 }, (_, i) => ({ topic: 'flaky.work', payload: { i, fail: i === 4 } }));
  const ids = (await publish(events.url, batch)).body.events.map((e: { id: number }) => e.id);
  const got = (await waitFor(async () => {
    const list = await receivedBy(subscriber);
    return list.length >= 10 ? list : undefined;
  }, 'every event handled'))!;
  assert.deepEqual(got.map((e) => e.id), ids, 'each once, in order');
  assert.ok((await metricValue(events.url, 'events_retried_total')) >= 2, 'the failed deliveries were retried');
});
