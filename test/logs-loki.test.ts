/**
 * GET /logs as a Loki user expects it: a level is a minimum, an unknown level is refused, lines come in
 * time order (the newest last), a request id's first characters find its lines, the known services are
 * listed (GET /logs/labels) and a query naming another is told so, and GET /logs/volume counts lines per
 * time bucket.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, waitFor } from './helpers.ts';
import { metric, postLog, startLogService } from './fixtures/logs.ts';
import { RawEventReader } from './rawEventReader.ts';

let log: Awaited<ReturnType<typeof startLogService>>;
const post = async (entries: object[]) => assert.equal((await postLog(log.url, JSON.stringify(entries), 'application/json')).status, 202);
const messages = async (params: string): Promise<string[]> => {
  const res = await getJson(`${log.url}/logs?${params}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.entries.map((e: any) => e.message);
};

const REQ_A = '3f2a1b4c-0000-4000-8000-00000000000a';
const REQ_B = '3f2a9999-0000-4000-8000-00000000000b';

before(async () => {
  log = await startLogService();
  await post([
    { service: 'l-grades', level: 'debug', message: 'd', time: '2025-03-01T10:00:00Z' },
    { service: 'l-grades', level: 'info', message: 'i', time: '2025-03-01T10:00:01Z' },
    { service: 'l-grades', level: 'warn', message: 'w', time: '2025-03-01T10:00:02Z' },
    { service: 'l-grades', level: 'error', message: 'e', time: '2025-03-01T10:00:03Z' },
    { service: 'l-grades', level: 'fatal', message: 'f', time: '2025-03-01T10:00:04Z' },
    { service: 'l-grades', level: 'warning', message: 'w2', time: '2025-03-01T10:00:05Z' },
  ]);
});
after(async () => {
  await log?.stop();
});

test('a level is a minimum: warn means warn and worse', async () => {
  assert.deepEqual(await messages('service=l-grades&level=warn'), ['w', 'e', 'f', 'w2'], 'errors too; other loggers\' fatal and warning rank with error and warn');
  assert.deepEqual(await messages('service=l-grades&level=error'), ['e', 'f']);
  assert.deepEqual(await messages('service=l-grades&level=INFO'), ['i', 'w', 'e', 'f', 'w2'], 'case does not matter');
  assert.deepEqual(await messages('service=l-grades&level=debug'), ['d', 'i', 'w', 'e', 'f', 'w2']);
  assert.deepEqual(await messages('service=l-grades&level=error,warn'), ['w', 'e', 'f', 'w2'], 'a list lets through its least severe');
  assert.deepEqual(await messages('service=l-grades&level='), ['d', 'i', 'w', 'e', 'f', 'w2'], 'empty is any level');
});

test('an unknown level is a 400 naming the levels, on GET /logs, /logs/volume and /logs/stream', async () => {
  for (const path of ['/logs', '/logs/volume', '/logs/stream']) {
    const res = await getJson(`${log.url}${path}?level=warning`);
    assert.equal(res.status, 400, path);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(Object.keys(res.body), ['error']);
    assert.equal(res.body.error.code, 'invalid_query');
    assert.match(res.body.error.message, /^level: unknown level "warning": the levels are error, warn, info, http, verbose, debug, silly/, path);
  }
});

test('lines come in time order, the newest last, whatever order they arrived in', async () => {
  // Two services' batches arrive out of step: the later batch holds the earlier times.
  await post([
    { service: 'l-order-a', message: 'a2', time: '2025-03-02T10:00:02Z' },
    { service: 'l-order-a', message: 'a4', time: '2025-03-02T10:00:04Z' },
  ]);
  await post([
    { service: 'l-order-b', message: 'b1', time: '2025-03-02T10:00:01Z' },
    { service: 'l-order-b', message: 'b3', time: '2025-03-02T10:00:03Z' },
    { service: 'l-order-b', message: 'b3 again, same instant', time: '2025-03-02T10:00:03Z' },
  ]);
  const res = await getJson(`${log.url}/logs?service=l-order-a,l-order-b`);
  assert.deepEqual(res.body.entries.map((e: any) => e.message), ['b1', 'a2', 'b3', 'b3 again, same instant', 'a4']);
  const times = res.body.entries.map((e: any) => Date.parse(e.time));
  assert.deepEqual(times, [...times].sort((a, b) => a - b));
  assert.deepEqual(await messages('service=l-order-a,l-order-b&limit=2'), ['b3', 'b3 again, same instant'], 'the limit keeps the newest arrivals, shown in time order');
});

test('a request id\'s first characters find its lines; an ambiguous start is a 400 naming the ids', async () => {
  await post([
    { service: 'l-portal', message: 'A one', requestId: REQ_A },
    { service: 'l-grades', message: 'A two', requestId: REQ_A },
    { service: 'l-grades', message: 'B one', requestId: REQ_B },
    { service: 'l-grades', message: 'short id', requestId: 'req-7' },
    { service: 'l-grades', message: 'longer id', requestId: 'req-77' },
  ]);
  assert.deepEqual(await messages(`requestId=${REQ_A.slice(0, 8)}`), ['A one', 'A two'], 'the 8 characters shown everywhere');
  assert.deepEqual(await messages(`requestId=${REQ_A}`), ['A one', 'A two'], 'the whole id');
  assert.deepEqual(await messages('requestId=req-7'), ['short id'], 'a whole id is itself, not the start of longer ones');
  assert.deepEqual(await messages('requestId=req-77'), ['longer id']);
  assert.deepEqual(await messages('requestId=nosuch'), []);

  const res = await getJson(`${log.url}/logs?requestId=3f2a`);
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, 'ambiguous_request_id');
  assert.match(res.body.error.message, /^requestId: "3f2a" is the start of 2 request ids/);
  assert.ok(res.body.error.message.includes(REQ_A) && res.body.error.message.includes(REQ_B), res.body.error.message);
  assert.equal((await getJson(`${log.url}/logs/stream?requestId=3f2a`)).status, 400, 'the tail refuses it too');
});

test('a tail opened with a request id\'s start follows that one request', async (t) => {
  const first = 'c0ffee01-0000-4000-8000-000000000001';
  const other = 'c0ffee01-ffff-4000-8000-000000000002';
  await post([{ service: 'l-tail', message: 'before', requestId: first }]);
  const reader = new RawEventReader(`${log.url}/logs/stream?requestId=c0ffee01`);
  t.after(() => reader.close());
  await waitFor(async () => (await metric(log.url, 'log_tail_streams')) === 1, 'the tail');
  await post([
    { service: 'l-tail', message: 'other request, same start', requestId: other },
    { service: 'l-tail', message: 'first again', requestId: first },
  ]);
  await waitFor(() => reader.named('message').length >= 1, 'the line of the request');
  await post([{ service: 'l-tail', message: 'last', requestId: first }]);
  await waitFor(() => reader.named('message').some((e) => JSON.parse(e.data).message === 'last'), 'the last line');
  assert.deepEqual(reader.named('message').map((e) => JSON.parse(e.data).message), ['first again', 'last']);
});

test('GET /logs/labels lists the services with lines and the levels; a query naming another says so', async () => {
  const labels = await getJson(`${log.url}/logs/labels`);
  assert.equal(labels.status, 200);
  for (const name of ['l-grades', 'l-portal', 'l-order-a']) assert.ok(labels.body.services.includes(name), name);
  assert.deepEqual(labels.body.services, [...labels.body.services].sort());
  assert.deepEqual(labels.body.levels, ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']);

  const res = await getJson(`${log.url}/logs?service=master,l-portal`);
  assert.equal(res.status, 200, 'not an error: the answer is empty for that service');
  assert.deepEqual(res.body.unknownServices, ['master']);
  assert.ok(res.body.entries.length > 0);
  assert.equal((await getJson(`${log.url}/logs?service=l-portal`)).body.unknownServices, undefined);
});

test('the services of an earlier run are listed after a restart', async () => {
  const first = await startLogService();
  await postLog(first.url, JSON.stringify({ service: 'l-before-restart', message: 'x' }), 'application/json');
  assert.equal(await first.stop(), 0);
  const again = await startLogService({}, first.dataDir);
  try {
    assert.deepEqual((await getJson(`${again.url}/logs/labels`)).body.services, ['l-before-restart']);
  } finally {
    await again.stop();
  }
});

test('GET /logs/volume counts matching lines per time bucket and level', async () => {
  await post([
    ...Array.from({ length: 3 }, (_, i) => ({ service: 'l-vol', level: 'info', message: `first minute ${i}`, time: `2025-03-03T10:00:${10 + i}Z` })),
    { service: 'l-vol', level: 'error', message: 'burst', time: '2025-03-03T10:02:30Z' },
    ...Array.from({ length: 5 }, (_, i) => ({ service: 'l-vol', level: 'warn', message: `burst ${i}`, time: `2025-03-03T10:02:${31 + i}Z` })),
  ]);
  const res = await getJson(`${log.url}/logs/volume?service=l-vol&since=2025-03-03T10:00:00Z&until=2025-03-03T10:04:59.999Z&buckets=5`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.stepMs, 60_000);
  assert.deepEqual(res.body.buckets.map((b: any) => b.time), [0, 1, 2, 3, 4].map((m) => `2025-03-03T10:0${m}:00.000Z`));
  assert.deepEqual(res.body.buckets.map((b: any) => b.count), [3, 0, 6, 0, 0]);
  assert.deepEqual(res.body.buckets[2].levels, { error: 1, warn: 5 });
  assert.equal(res.body.total, 9);
  assert.equal(res.body.truncated, false);

  const narrowed = await getJson(`${log.url}/logs/volume?service=l-vol&level=error&since=2025-03-03T10:00:00Z&until=2025-03-03T10:04:59.999Z&buckets=5`);
  assert.equal(narrowed.body.total, 1, 'the same filters as GET /logs');
  const open = await getJson(`${log.url}/logs/volume?service=l-vol`);
  assert.equal(open.body.from, '2025-03-03T10:00:10.000Z', 'without since: from the earliest line');
  assert.equal(open.body.total, 9);
  assert.ok(open.body.buckets.length <= 61);
  for (const bad of ['buckets=0', 'buckets=501', 'buckets=many', 'since=never']) {
    const refused = await getJson(`${log.url}/logs/volume?${bad}`);
    assert.equal(refused.status, 400, bad);
    assert.equal(refused.body.error.code, 'invalid_query');
  }
});
