/**
 * Bad input gets a clear JSON error and changes nothing: malformed JSON, a 100 MiB body (declared or
 * chunked), an address that is not host:port, a topic with bad characters, the wrong content type.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, rawRequest, startRegistry, type Proc } from './helpers.ts';
import { startEventsService, startRecorder, type Recorder } from './events-helpers.ts';
import { procStats } from '../bench/report.ts';
import { rawExchange, requestHead, zeros, chunked } from '../bench/fuzz/raw.ts';

const MiB = 2 ** 20;
let registry: Proc;
let events: Proc;
let recorder: Recorder;

before(async () => {
  registry = await startRegistry();
  events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000' });
  recorder = await startRecorder();
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${recorder.address}&topics=message,good.*`, { method: 'POST' });
});
after(async () => {
  await recorder?.close();
  await events?.stop();
  await registry?.stop();
});

/** What a refused request must leave as it was. */
async function state() {
  const [topics, subscribers, listing] = await Promise.all([
    getJson(`${events.url}/topics`),
    getJson(`${events.url}/subscribers`),
    rawRequest(`${events.url}/listSubscribers`, { method: 'GET' }),
  ]);
  const views = (subscribers.body.subscribers as { key: string; topics: string[]; queued: number; delivered: number }[]).map(({ key, topics, queued, delivered }) => ({ key, topics, queued, delivered }));
  // The registry's own news (instance.*) may arrive at any time; what the test sends is everything else.
  const own = (topics.body.topics as { topic: string; seq: number }[]).filter((t) => t.topic.startsWith('instance.'));
  const published = { lastId: topics.body.lastId - own.reduce((sum, t) => sum + t.seq, 0), topics: topics.body.topics.filter((t: { topic: string }) => !t.topic.startsWith('instance.')) };
  return { topics: published, subscribers: views, listing: listing.body, received: recorder.received.length };
}

function assertError(res: { status: number; body: any }, status: number, code: string, what: string) {
  assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(res.body?.error?.code, code, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.error.message, 'string');
  assert.ok(res.body.error.message.length > 10, `${what}: a message that says what is wrong`);
  assert.doesNotMatch(JSON.stringify(res.body), /\n\s+at /, `${what}: no stack trace`);
}

const post = (path: string, body: string, contentType = 'application/json') => rawRequest(`${events.url}${path}`, { method: 'POST', body, headers: { 'content-type': contentType } });

test('malformed JSON, wrong shapes and wrong content types are refused, and nothing is published', async () => {
  const before = await state();
  const cases: [string, Promise<{ status: number; body: any }>, number, string][] = [
    ['truncated JSON', post('/publish', '{"topic":"good.a","payload":'), 400, 'malformed_json'],
    ['not JSON at all', post('/publish', 'topic=good.a'), 400, 'malformed_json'],
    ['an empty body', post('/publish', ''), 400, 'empty_body'],
    ['an empty array', post('/publish', '[]'), 400, 'invalid_event'],
    ['an array of numbers', post('/publish', '[1,2]'), 400, 'invalid_event'],
    ['no topic', post('/publish', '{"payload":1}'), 400, 'invalid_topic'],
    ['text/plain to /publish', post('/publish', '{"topic":"good.a"}', 'text/plain'), 415, 'unsupported_media_type'],
    ['malformed JSON to /sendMessage', post('/sendMessage', '{"n":', 'application/json'), 400, 'malformed_json'],
  ];
  for (const [what, request, status, code] of cases) assertError(await request, status, code, what);
  assert.deepEqual(await state(), before);
});

test('topics with bad characters are refused in publish, sendMessage and subscriptions', async () => {
  const before = await state();
  const badTopics = ['has space', 'a..b', '.leading', 'trailing.', 'wild.*', 'all.>', 'tab\there', 'new\nline', 'x'.repeat(201), 'ünïcode', 'semi;colon', ''];
  for (const topic of badTopics) {
    assertError(await post('/publish', JSON.stringify({ topic, payload: 1 })), 400, 'invalid_topic', `publish ${JSON.stringify(topic)}`);
    assertError(await post('/publish', JSON.stringify([{ topic: 'good.a' }, { topic }])), 400, 'invalid_topic', `a batch with ${JSON.stringify(topic)}`);
  }
  assertError(await post('/publish', JSON.stringify({ topic: 42 })), 400, 'invalid_topic', 'a number as topic');
  assertError(await post(`/sendMessage?topic=${encodeURIComponent('bad topic')}`, 'hi', 'text/plain'), 400, 'invalid_topic', 'sendMessage ?topic=');
  for (const pattern of ['a.>.b', 'a b', 'a.**', '>x', ',']) {
    const res = await rawRequest(`${events.url}/registerAndKeepAlive?address=${recorder.address}&topics=${encodeURIComponent(pattern)}`, { method: 'POST' });
    assertError(res, 400, 'invalid_topic', `subscription pattern ${JSON.stringify(pattern)}`);
  }
  assert.deepEqual(await state(), before);
});

test('an address that is not host:port is refused by registerAndKeepAlive and deregister', async () => {
  const before = await state();
  const bad = ['', 'nohost', '127.0.0.1', '127.0.0.1:', ':9000', '127.0.0.1:0', '127.0.0.1:70000', 'http://127.0.0.1:9000', '127.0.0.1:9000/path', 'a b:80', 'user@host:80', '-bad.host:80', '127.0.0.1:9000?x=1'];
  for (const address of bad) {
    const query = address === '' ? '' : `?address=${encodeURIComponent(address)}`;
    assertError(await rawRequest(`${events.url}/registerAndKeepAlive${query}`, { method: 'POST' }), 400, 'invalid_address', `register ${JSON.stringify(address)}`);
    assertError(await rawRequest(`${events.url}/deregister${query}`, { method: 'DELETE' }), 400, 'invalid_address', `deregister ${JSON.stringify(address)}`);
  }
  assertError(await rawRequest(`${events.url}/registerAndKeepAlive?address=a:1&address=b:2`, { method: 'POST' }), 400, 'invalid_address', 'two addresses');
  assert.deepEqual(await state(), before);
});

test('an address on a host that is not the caller\'s is refused (the service would POST to it), and a foreign deregister too', async () => {
  const before = await state();
  // 192.0.2.10 is TEST-NET-1 and 169.254.169.254 a cloud metadata address: neither is this test's own address.
  for (const address of ['192.0.2.10:80', '169.254.169.254:80', '[2001:db8::1]:80']) {
    assertError(await rawRequest(`${events.url}/registerAndKeepAlive?address=${encodeURIComponent(address)}`, { method: 'POST' }), 403, 'foreign_host', `register ${address}`);
    assertError(await rawRequest(`${events.url}/deregister?address=${encodeURIComponent(address)}`, { method: 'DELETE' }), 403, 'foreign_host', `deregister ${address}`);
  }
  assert.deepEqual(await state(), before);
});

test('a 100 MiB body is refused early (declared or chunked), memory stays flat, and nothing is published', async (t) => {
  const before = await state();
  const pid = events.child.pid!;
  const host = new URL(events.url).host;
  const rssBefore = procStats(pid).rssMB;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, procStats(pid).rssMB)), 20);
  t.after(() => clearInterval(sampler));
  for (const [path, type] of [['/publish', 'application/json'], ['/sendMessage', 'application/octet-stream'], ['/sendMessage', 'text/plain']]) {
    for (const framing of ['content-length', 'chunked'] as const) {
      const answer = await rawExchange(events.url, {
        head: requestHead('POST', path, host, [`Content-Type: ${type}`, framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${100 * MiB}`]),
        body: framing === 'chunked' ? chunked(100 * MiB) : zeros(100 * MiB),
        writeAfterAnswer: true,
        timeoutMs: 30_000,
      });
      t.diagnostic(`${path} ${type} ${framing}: ${answer.status} after ${answer.ms} ms, ${(answer.sent / MiB).toFixed(1)} MiB let through`);
      assert.equal(answer.status, 413, `${path} ${framing}: ${answer.ending} ${answer.body}`);
      assert.equal(JSON.parse(answer.body).error.code, 'payload_too_large');
      assert.ok(answer.sent < 50 * MiB, `${path} ${framing}: ${(answer.sent / MiB).toFixed(1)} MiB read`);
    }
  }
  clearInterval(sampler);
  assert.ok(peak - rssBefore < 40, `RSS grew ${(peak - rssBefore).toFixed(0)} MB`);
  assert.deepEqual(await state(), before);

  // Still serving.
  assert.equal((await post('/publish', JSON.stringify({ topic: 'good.after', payload: 1 }))).status, 202);
});
