/**
 * The server-sent-events hub: a reader that never reads is cut off at the cap and its bytes are
 * freed; a slow reader is told why and resumes with Last-Event-ID without a gap or a repeat;
 * heartbeats come from one timer; summaries are coalesced; state events go out at once.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SseHub, type SseHubOptions } from './sseHub.ts';
import { waitFor } from '../test/helpers.ts';
import { RawEventReader } from '../test/rawEventReader.ts';

async function serve(t: TestContext, options: Partial<SseHubOptions<string>> = {}) {
  const hub = new SseHub<string>({
    maxClients: 100,
    maxQueuedBytes: 64 * 1024,
    replayBytes: 256 * 1024,
    heartbeatMs: 60_000,
    summaryMs: 60_000,
    drainMs: 200,
    filterKey: (f) => f,
    ...options,
  });
  const server = http.createServer((req, res) => hub.open(req, res, new URL(req.url ?? '/', 'http://x').searchParams.get('f') ?? ''));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    hub.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { hub, url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/stream` };
}

const kilobyte = 'x'.repeat(1000);

test('a reader that never reads is cut off past the cap, and its queued bytes are freed; readers that read get every event', async (t) => {
  const cap = 64 * 1024;
  const { hub, url } = await serve(t, { maxQueuedBytes: cap });
  const stalled = new RawEventReader(url, { reading: false });
  const reader = new RawEventReader(url);
  await waitFor(() => hub.size === 2, 'both readers to connect');
  let maxQueued = 0;
  let sent = 0;
  while (hub.disconnects === 0) {
    assert.ok(sent < 200_000, `no cut-off after ${sent} events of 1 kB`);
    hub.publish([{ event: 'change', data: `${sent++} ${kilobyte}` }]);
    await nextTurn();
    maxQueued = Math.max(maxQueued, hub.queuedBytes);
  }
  assert.equal(hub.size, 1, 'only the stalled reader is cut off');
  // The cap, one more event, the reason, the reader that reads: nothing grows without bound.
  assert.ok(maxQueued <= cap + 4 * 1024 + 64 * 1024, `queued ${maxQueued} bytes`);
  await waitFor(() => hub.queuedBytes === 0, 'the stalled socket to be destroyed after its drain time');
  await waitFor(() => reader.named('change').length === sent, `the reading reader to get all ${sent} events`);
  assert.deepEqual(
    reader.named('change').map((e) => Number(e.data.split(' ')[0])),
    Array.from({ length: sent }, (_, i) => i),
  );
  stalled.close();
  reader.close();
});

test('a slow reader is told why it was cut off and resumes with Last-Event-ID, with no gap and no repeat', async (t) => {
  const { hub, url } = await serve(t, { maxQueuedBytes: 32 * 1024, replayBytes: 16 * 1024 * 1024, drainMs: 30_000 });
  const slow = new RawEventReader(url, { reading: false });
  await waitFor(() => hub.size === 1, 'the reader to connect');
  let sent = 0;
  while (hub.disconnects === 0) {
    hub.publish([{ data: `${++sent} ${kilobyte}` }]);
    await nextTurn();
  }
  slow.read();
  await waitFor(() => slow.ended, 'the cut-off stream to end');
  const last = slow.events.at(-1)!;
  assert.equal(last.event, 'disconnect');
  assert.equal(JSON.parse(last.data).reason, 'slow_reader');
  const first = slow.named('message');
  const lastId = first.at(-1)!.id!;
  const resumed = new RawEventReader(url, { lastEventId: lastId });
  await waitFor(() => hub.size === 1, 'the reconnect');
  for (let i = 0; i < 10; i++) hub.publish([{ data: `${++sent} ${kilobyte}` }]);
  await waitFor(() => resumed.named('message').length + first.length === sent, 'the resumed reader to catch up');
  const all = [...first, ...resumed.named('message')].map((e) => Number(e.data.split(' ')[0]));
  assert.deepEqual(all, Array.from({ length: sent }, (_, i) => i + 1));
  assert.equal(resumed.named('snapshot').length, 0);
  resumed.close();
});

test('a reconnect whose events are gone, or with an id from another process, is greeted afresh', async (t) => {
  const openings: unknown[] = [];
  const { hub, url } = await serve(t, {
    epoch: 'e1',
    replayBytes: 4 * 1024,
    greet: (o) => {
      openings.push(o);
      return [{ event: 'snapshot', data: JSON.stringify({ missed: o.missed ?? null }) }];
    },
  });
  const first = new RawEventReader(url);
  await waitFor(() => first.named('snapshot').length === 1, 'the first snapshot');
  assert.equal(first.events[0].id, undefined, 'no id before the first event');
  for (let i = 0; i < 20; i++) hub.publish([{ data: kilobyte }]);
  await waitFor(() => first.named('message').length === 20, 'the events');
  assert.equal(first.named('message')[0].id, 'e1-0');
  first.close();

  const old = new RawEventReader(url, { lastEventId: 'e1-1' });
  await waitFor(() => old.named('snapshot').length === 1, 'a snapshot for a reader whose events are gone');
  assert.equal(old.named('message').length, 0);
  assert.ok(JSON.parse(old.named('snapshot')[0].data).missed >= 14);
  assert.equal(old.named('snapshot')[0].id, 'e1-19');
  const foreign = new RawEventReader(url, { lastEventId: 'e0-18' });
  await waitFor(() => foreign.named('snapshot').length === 1, 'a snapshot for an id of another process');
  assert.deepEqual(openings.at(-1), { filter: '', lastEventId: undefined, missed: undefined });
  const recent = new RawEventReader(url, { lastEventId: 'e1-18' });
  await waitFor(() => recent.named('message').length === 1, 'the one event after e1-18');
  assert.equal(recent.named('snapshot').length, 0);
  for (const r of [old, foreign, recent]) r.close();
});

test('heartbeats reach every client from one timer', async (t) => {
  const { hub, url } = await serve(t, { heartbeatMs: 50 });
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const readers = Array.from({ length: 20 }, () => new RawEventReader(url));
  await waitFor(() => hub.size === 20, 'the readers to connect');
  await waitFor(() => readers.every((r) => r.comments >= 4), 'three heartbeats at every reader (after the ": connected" comment)');
  assert.equal(timers(), before, 'no timer per client');
  for (const r of readers) r.close();
});

test('summaries are coalesced: at most one per summaryMs, built for each filter, and none to a filter with nothing to say', async (t) => {
  const { hub, url } = await serve(t, { summaryMs: 100 });
  const a = new RawEventReader(`${url}?f=a`);
  const b = new RawEventReader(`${url}?f=b`);
  const quiet = new RawEventReader(`${url}?f=quiet`);
  await waitFor(() => hub.size === 3, 'the readers to connect');
  let calls = 0;
  let taken = 0;
  const started = Date.now();
  while (Date.now() - started < 500) {
    calls++;
    hub.summarize('checked', () => {
      const count = calls - taken;
      taken = calls;
      return (filter) => (filter === 'quiet' ? undefined : JSON.stringify({ filter, count }));
    });
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await waitFor(() => taken === calls, 'the last summary');
  const elapsed = Date.now() - started;
  await waitFor(() => a.named('checked').reduce((n, e) => n + JSON.parse(e.data).count, 0) === calls, 'every call counted in a summary');
  assert.ok(a.named('checked').length <= Math.ceil(elapsed / 100) + 1, `${a.named('checked').length} summaries in ${elapsed} ms`);
  assert.ok(calls > 50);
  assert.ok(a.named('checked').every((e) => JSON.parse(e.data).filter === 'a'));
  await waitFor(() => b.named('checked').length === a.named('checked').length, 'b to get its own summaries');
  assert.ok(b.named('checked').every((e) => JSON.parse(e.data).filter === 'b'));
  assert.equal(quiet.named('checked').length, 0);
  for (const r of [a, b, quiet]) r.close();
});

test('events go out at once, not at the next tick, to the clients they match', async (t) => {
  const { hub, url } = await serve(t, { summaryMs: 60_000, heartbeatMs: 60_000 });
  const a = new RawEventReader(`${url}?f=a`);
  const b = new RawEventReader(`${url}?f=b`);
  await waitFor(() => hub.size === 2, 'the readers to connect');
  hub.publish([{ event: 'down', data: 'for a', match: (f) => f === 'a' }, { event: 'down', data: 'for all' }]);
  await waitFor(() => a.named('down').length === 2 && b.named('down').length === 1, 'the events', 5000);
  assert.deepEqual(b.named('down').map((e) => e.data), ['for all']);
  assert.deepEqual(a.named('down').map((e) => e.id), ['0', '1']);
  a.close();
  b.close();
});

test('with greetingMaxAgeMs, clients that connect while events come share one greeting, followed by the events since it', async (t) => {
  let made = 0;
  const { hub, url } = await serve(t, {
    epoch: 'e2',
    greetingMaxAgeMs: 60_000,
    greet: () => [{ event: 'snapshot', data: `snapshot ${made++}` }],
  });
  hub.publish([{ event: 'change', data: 'before anyone' }]);
  const first = new RawEventReader(url);
  await waitFor(() => first.named('snapshot').length === 1, 'the first snapshot');
  const readers = [first];
  for (let i = 0; i < 3; i++) {
    hub.publish([{ event: 'change', data: `change ${i}` }]);
    const reader = new RawEventReader(url);
    readers.push(reader);
    await waitFor(() => reader.named('snapshot').length === 1 && reader.named('change').length === i + 1, `reader ${i + 2}'s snapshot and changes`);
  }
  for (const reader of readers) await waitFor(() => reader.named('change').length === 3, 'every change at every reader');
  assert.equal(made, 1, 'one snapshot for all four readers');
  for (const reader of readers) {
    // The shared snapshot, as of the event before it, then each change once, in order.
    assert.deepEqual(
      reader.events.filter((e) => e.event !== 'heartbeat').map((e) => [e.event, e.data, e.id]),
      [
        ['snapshot', 'snapshot 0', 'e2-0'],
        ['change', 'change 0', 'e2-1'],
        ['change', 'change 1', 'e2-2'],
        ['change', 'change 2', 'e2-3'],
      ],
    );
  }
  for (const reader of readers) reader.close();
});
