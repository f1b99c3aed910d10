/**
 * The reference multicast API, driven as its clients drive it: subscribers register their address and
 * keep calling, publishers post any body, every subscriber gets it at POST /event as it was sent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { getJson, rawRequest, startRegistry, waitFor, type Proc } from './helpers.ts';
import { startEventsService, startRecorder, type Recorder } from './events-helpers.ts';

let registry: Proc;
let events: Proc;

before(async () => {
  registry = await startRegistry();
  events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '2000' });
});
after(async () => {
  await events?.stop();
  await registry?.stop();
});

/** As a Go client does it: http.Post(url, "", nil) — no body, no content type. */
const keepAlive = (address: string) => rawRequest(`${events.url}/registerAndKeepAlive?address=${address}`, { method: 'POST' });
const sendMessage = (body: string | Buffer, contentType: string) =>
  rawRequest(`${events.url}/sendMessage`, { method: 'POST', body, headers: { 'content-type': contentType } });
const listSubscribers = async () => (await rawRequest(`${events.url}/listSubscribers`, { method: 'GET' })).body as string;

test('registerAndKeepAlive, sendMessage of any body, listSubscribers and deregister', async (t) => {
  const a = await startRecorder();
  const b = await startRecorder();
  t.after(() => Promise.all([a.close(), b.close()]));
  for (const recorder of [a, b]) assert.equal((await keepAlive(recorder.address)).status, 200);

  const listing = await rawRequest(`${events.url}/listSubscribers`, { method: 'GET' });
  assert.equal(listing.status, 200);
  assert.match(String(listing.headers['content-type']), /^text\/plain/);
  const lines = String(listing.body).trim().split('\n');
  assert.equal(lines.length, 2, String(listing.body));
  for (const recorder of [a, b]) {
    const line = lines.find((l) => l.startsWith(`${recorder.address} : `));
    assert.ok(line, `${recorder.address} listed`);
    assert.ok(Date.parse(line!.split(' : ')[1]) > Date.now() - 60_000, `registered-at is a time: ${line}`);
  }

  const binary = randomBytes(1024);
  const bodies: [Buffer, string][] = [
    [Buffer.from('hello, wörld'), 'text/plain; charset=utf-8'],
    [Buffer.from('{"n":1,"tags":["a","b"],"nested":{"x":null}}'), 'application/json'],
    [binary, 'application/octet-stream'],
    [Buffer.from('<note>seven</note>'), 'application/xml'],
  ];
  for (const [body, type] of bodies) assert.equal((await sendMessage(body, type)).status, 200);

  for (const recorder of [a, b]) {
    await waitFor(() => recorder.received.length >= bodies.length, `${recorder.address} to get every message`);
    assert.equal(recorder.received.length, bodies.length, 'each message once');
    recorder.received.forEach((got, i) => {
      assert.ok(got.body.equals(bodies[i][0]), `message ${i} arrives as it was sent`);
      assert.equal(got.headers['content-type'], bodies[i][1], `message ${i} keeps its content type`);
    });
    assert.deepEqual(recorder.received.map((r) => Number(r.headers['x-event-id'])), [...recorder.received.map((r) => Number(r.headers['x-event-id']))].sort((x, y) => x - y));
  }

  const gone = await rawRequest(`${events.url}/deregister?address=${a.address}`, { method: 'DELETE' });
  assert.equal(gone.status, 200);
  assert.doesNotMatch(await listSubscribers(), new RegExp(a.address));
  assert.equal((await sendMessage('after', 'text/plain')).status, 200);
  await waitFor(() => b.received.length === bodies.length + 1, 'the remaining subscriber to get the next message');
  assert.equal(a.received.length, bodies.length, 'a deregistered subscriber gets nothing more');

  const unknown = await rawRequest(`${events.url}/deregister?address=${a.address}`, { method: 'DELETE' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'unknown_subscriber');
  await keepAlive(b.address).then(() => rawRequest(`${events.url}/deregister?address=${b.address}`, { method: 'DELETE' }));
});

test('a subscriber that stops calling registerAndKeepAlive is dropped after EVENTS_KEEPALIVE_MS (what it is owed waits for it); one that keeps calling stays', async (t) => {
  const quiet: Recorder = await startRecorder();
  const faithful: Recorder = await startRecorder();
  t.after(() => Promise.all([quiet.close(), faithful.close()]));
  await keepAlive(quiet.address);
  const since = Date.now();
  const timer = setInterval(() => void keepAlive(faithful.address), 300);
  t.after(() => clearInterval(timer));
  await keepAlive(faithful.address);

  await waitFor(async () => !(await listSubscribers()).includes(quiet.address), 'the quiet subscriber to be dropped', 10_000);
  const droppedAfter = Date.now() - since;
  assert.ok(droppedAfter >= 1500, `dropped after ${droppedAfter} ms, not before its keep-alive time (2000 ms)`);
  assert.match(await listSubscribers(), new RegExp(faithful.address));

  await sendMessage('sent while it was dropped', 'text/plain');
  await waitFor(() => faithful.received.length === 1, 'the faithful subscriber to get the message');
  assert.equal(quiet.received.length, 0, 'a dropped subscriber is not called');
  const view = (await getJson(`${events.url}/subscribers`)).body.subscribers.find((s: { target: string }) => s.target === quiet.address);
  assert.equal(view.state, 'dropped');
  assert.equal(view.queued, 1, 'what it is owed waits for it, within the retention window');

  // It comes back (within the retention window): listed again, and it gets what it missed.
  await keepAlive(quiet.address);
  assert.match(await listSubscribers(), new RegExp(quiet.address));
  await waitFor(() => quiet.received.length === 1, 'the returning subscriber to get what it missed');
  assert.equal(quiet.texts()[0], 'sent while it was dropped');
  clearInterval(timer);
  for (const r of [quiet, faithful]) await rawRequest(`${events.url}/deregister?address=${r.address}`, { method: 'DELETE' });
});
