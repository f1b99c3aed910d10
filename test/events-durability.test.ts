/**
 * A 200/202 from the events service is durable: SIGKILL it in the middle of a flood of publishes,
 * start it again on the same DATA_DIR, and every acknowledged event reaches every subscriber that was
 * there when it was published.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest, startRegistry, waitFor } from './helpers.ts';
import { receivedBy, startEventsService, startRecorder, startSubscriberService, subscriberViews } from './events-helpers.ts';

test('kill -9 of the events service mid-flood: every acknowledged event is delivered after the restart', { timeout: 180_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  let events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000' });
  const dataDir = events.dataDir;
  t.after(() => events.stop());

  // One platform subscriber that is up during the flood, and one reference subscriber that is away.
  const live = await startSubscriberService(registry.url, { name: 'ledger', broadcast: ['flood.*'] });
  t.after(() => live.stop());
  await waitFor(async () => (await subscriberViews(events.url)).get(`instance:${live.url}`)?.state === 'up', 'the ledger subscription');
  let away = await startRecorder();
  const awayPort = away.port;
  assert.equal((await rawRequest(`${events.url}/registerAndKeepAlive?address=${away.address}&topics=flood.*`, { method: 'POST' })).status, 200);
  await away.close();

  const acknowledged = new Set<number>();
  let batchNo = 0;
  let killed = false;
  const publisher = async () => {
    while (!killed) {
      const n = batchNo++;
      const body = JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ topic: 'flood.item', payload: { n, i } })));
      try {
        const res = await fetch(`${events.url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(5000) });
        if (res.status !== 202) continue;
        for (const e of ((await res.json()) as { events: { id: number }[] }).events) acknowledged.add(e.id);
      } catch {
        return; // killed under us: this batch was never acknowledged
      }
    }
  };
  const flood = Promise.all([publisher(), publisher(), publisher(), publisher()]);
  await waitFor(() => acknowledged.size >= 3000, '3,000 acknowledged events', 60_000);
  events.child.kill('SIGKILL');
  killed = true;
  await flood;
  await events.exited;
  const deliveredBeforeKill = (await receivedBy(live)).length;
  assert.ok(deliveredBeforeKill < acknowledged.size || acknowledged.size > 0);

  events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000' }, dataDir);
  away = await startRecorder({ port: awayPort });
  t.after(() => away.close());
  assert.equal((await rawRequest(`${events.url}/registerAndKeepAlive?address=${away.address}&topics=flood.*`, { method: 'POST' })).status, 200);

  const wanted = [...acknowledged].sort((a, b) => a - b);
  const liveGot = (await waitFor(async () => {
    const got = await receivedBy(live);
    const ids = new Set(got.map((e) => e.id));
    return wanted.every((id) => ids.has(id)) ? got : undefined;
  }, `the live subscriber to have all ${wanted.length} acknowledged events`, 60_000))!;
  const liveIds = liveGot.map((e) => e.id);
  assert.deepEqual(liveIds, [...liveIds].sort((a, b) => a - b), 'in order, each once (the endpoint skips what it already handled)');

  await waitFor(() => {
    const ids = new Set(away.received.map((r) => Number(r.headers['x-event-id'])));
    return wanted.every((id) => ids.has(id));
  }, `the returning subscriber to have all ${wanted.length} acknowledged events`, 60_000);
  const awayIds = away.received.map((r) => Number(r.headers['x-event-id']));
  assert.deepEqual(awayIds, [...awayIds].sort((a, b) => a - b), 'in order');
  assert.equal(new Set(awayIds).size, awayIds.length, 'once: it was away during the flood, so nothing is delivered twice');
});

test('SIGTERM: the events service exits 0, and after a restart delivers what was still queued, in order, once', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  let events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000' });
  const dataDir = events.dataDir;
  t.after(() => events.stop());
  let away = await startRecorder();
  const port = away.port;
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${away.address}`, { method: 'POST' });
  await away.close();
  const sent: string[] = [];
  for (let i = 0; i < 100; i++) {
    sent.push(`queued ${i}`);
    assert.equal((await rawRequest(`${events.url}/sendMessage`, { method: 'POST', body: sent[i], headers: { 'content-type': 'text/plain' } })).status, 200);
  }
  assert.equal(await events.stop('SIGTERM'), 0);

  events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000' }, dataDir);
  assert.match(events.output(), /restored 1 subscriber\(s\) with 100 event\(s\) still to deliver/);
  away = await startRecorder({ port });
  t.after(() => away.close());
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${away.address}`, { method: 'POST' });
  await waitFor(() => away.received.length >= 100, 'the queued messages after the restart');
  assert.deepEqual(away.texts(), sent, 'in order, once');
});
