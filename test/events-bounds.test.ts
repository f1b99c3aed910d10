/**
 * Queues are bounded: past EVENTS_QUEUE_LIMIT the oldest events are dropped, counted, and the
 * subscriber is told of the gap; events older than EVENTS_RETENTION_MS are dropped the same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { rawRequest, startRegistry, waitFor } from './helpers.ts';
import { metricValue, startEventsService, startRecorder, subscriberViews } from './events-helpers.ts';

test('past the queue bound the oldest are dropped and counted, and the next delivery says how many', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000', EVENTS_QUEUE_LIMIT: '10' });
  t.after(() => events.stop());
  let recorder = await startRecorder();
  const { port, address } = recorder;
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${address}`, { method: 'POST' });
  await recorder.close();

  for (let i = 0; i < 25; i++) await rawRequest(`${events.url}/sendMessage`, { method: 'POST', body: `m${i}`, headers: { 'content-type': 'text/plain' } });
  const view = (await subscriberViews(events.url)).get(`address:${address}`)!;
  assert.ok(view.queued <= 11, `bounded: ${view.queued} queued (10, plus one in flight)`);
  assert.ok(view.dropped >= 14, `${view.dropped} dropped`);
  assert.equal(await metricValue(events.url, 'events_dropped_total{reason="overflow"'), view.dropped);

  recorder = await startRecorder({ port });
  t.after(() => recorder.close());
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${address}`, { method: 'POST' });
  await waitFor(() => recorder.received.length === 25 - view.dropped, 'the kept messages');
  const texts = recorder.texts();
  assert.deepEqual(texts.slice(-10), Array.from({ length: 10 }, (_, i) => `m${15 + i}`), 'the newest are kept, in order');
  assert.equal(Number(recorder.received[0].headers['x-events-dropped']), view.dropped, 'the first delivery after the gap says how many were lost');
  assert.equal(recorder.received[1]?.headers['x-events-dropped'], undefined, 'told once');
});

test('an event undelivered for EVENTS_RETENTION_MS is dropped for that subscriber and leaves the journal', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000', EVENTS_RETENTION_MS: '1500' });
  t.after(() => events.stop());
  let recorder = await startRecorder();
  const { port, address } = recorder;
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${address}`, { method: 'POST' });
  await recorder.close();
  for (let i = 0; i < 5; i++) await rawRequest(`${events.url}/sendMessage`, { method: 'POST', body: `old${i}`, headers: { 'content-type': 'text/plain' } });
  await waitFor(async () => (await metricValue(events.url, 'events_dropped_total{reason="expired"')) === 5, 'the old events to expire', 10_000);
  assert.equal((await subscriberViews(events.url)).get(`address:${address}`)!.queued, 0);
  const journal = new Database(path.join(events.dataDir, 'events.sqlite'), { readonly: true });
  t.after(() => journal.close());
  const held = () => (journal.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  await waitFor(() => held() === 0, 'the journal to let go of the expired events');

  recorder = await startRecorder({ port });
  t.after(() => recorder.close());
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${address}`, { method: 'POST' });
  await rawRequest(`${events.url}/sendMessage`, { method: 'POST', body: 'fresh', headers: { 'content-type': 'text/plain' } });
  await waitFor(() => recorder.received.length === 1, 'the fresh message');
  assert.equal(recorder.texts()[0], 'fresh');
  assert.equal(recorder.received[0].headers['x-events-dropped'], '5');
});
