/**
 * The service library with real processes: round-robin and failover across instances, a clear
 * error when nothing is up, patches guarded by the token, start-up before the registry exists,
 * and graceful shutdown (deregister, drain, exit 0), also with the registry gone.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, getJson, providersOf, startFixture, startRegistry, waitFor } from './helpers.ts';

/** A registry and two echo instances (SIGKILLed at the end, whatever the test did to them). */
async function twoEchoes(t: TestContext) {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const a = await startFixture('echo', reg.url);
  t.after(() => a.stop('SIGKILL'));
  const b = await startFixture('echo', reg.url);
  t.after(() => b.stop('SIGKILL'));
  return { reg, a, b };
}

test('svc.client round-robins across two instances and fails over when one is killed', async (t) => {
  const { reg, a, b } = await twoEchoes(t);
  const consumer = await startFixture('consumer', reg.url, ['echo']);
  t.after(() => consumer.stop());
  await waitFor(async () => (await providersOf(consumer)).echo?.length === 2, 'two echo instances');

  const seen: string[] = [];
  for (let i = 0; i < 6; i++) {
    const { status, body } = await getJson(`${consumer.url}/call/echo`);
    assert.equal(status, 200);
    seen.push(body.url);
  }
  assert.deepEqual(new Set(seen), new Set([a.url, b.url]));
  for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], 'alternates');

  // Kill one: calls succeed at once, before the registry has even noticed.
  a.child.kill('SIGKILL');
  await a.exited;
  for (let i = 0; i < 6; i++) {
    const { status, body } = await getJson(`${consumer.url}/call/echo`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.url, b.url);
  }
  await waitFor(async () => JSON.stringify((await providersOf(consumer)).echo) === JSON.stringify([b.url]), 'the registry to remove the dead one');

  // Nothing up: a clear, typed error at once, never a hang.
  b.child.kill('SIGKILL');
  await waitFor(async () => (await providersOf(consumer)).echo?.length === 0, 'no echo left');
  const started = Date.now();
  const none = await getJson(`${consumer.url}/call/echo`);
  assert.equal(none.status, 503);
  assert.equal(none.body.error.code, 'no_provider');
  assert.match(none.body.error.message, /echo/);
  assert.ok(Date.now() - started < 2000);
});

/** A registry, an echo and a consumer that requires it, once the consumer knows of echo. */
async function echoAndConsumer(t: TestContext, env: Record<string, string> = {}, what = 'the consumer to learn of echo') {
  const reg = await startRegistry(env);
  t.after(() => reg.stop());
  const echo = await startFixture('echo', reg.url, [], env);
  t.after(() => echo.stop());
  const consumer = await startFixture('consumer', reg.url, ['echo'], env);
  t.after(() => consumer.stop());
  await waitFor(async () => (await providersOf(consumer)).echo?.includes(echo.url), what);
  return { echo, consumer };
}

test("a call to another service that answers 404 makes the caller answer 502 upstream_error, not a 404 of its own", async (t) => {
  const { consumer } = await echoAndConsumer(t);
  const res = await getJson(`${consumer.url}/call/echo?path=/no-such-route`);
  assert.equal(res.status, 502, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'upstream_error');
  assert.match(res.body.error.message, /answered 404: no route for GET \/no-such-route/);
});

test('with REGISTRY_TOKEN, a service takes patches from the registry and refuses anyone else (401)', async (t) => {
  const env = { REGISTRY_TOKEN: 'shared-secret' };
  const { echo, consumer } = await echoAndConsumer(t, env, 'the consumer to learn of echo from an authenticated patch');

  const forged = { added: [{ name: 'echo', url: 'http://127.0.0.1:9/evil' }], removed: [{ name: 'echo', url: echo.url }], seq: 99 };
  for (const headers of [{}, { authorization: 'Bearer wrong-secret' }] as Record<string, string>[]) {
    const res = await getJson(`${consumer.url}/services`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(forged),
    });
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'unauthorized');
  }
  assert.deepEqual((await providersOf(consumer)).echo, [echo.url], 'the provider table is unchanged');
});

test('a service without a token takes Go-style patches, and refuses malformed ones without losing its table', async (t) => {
  const { echo, consumer } = await echoAndConsumer(t);
  const post = (body: string) =>
    getJson(`${consumer.url}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  for (const bad of ['{', '{"added":"x"}', '{"added":[{"name":"echo"}]}', '{"added":[],"seq":-1}']) {
    const res = await post(bad);
    assert.equal(res.status, 400, bad);
    assert.ok(res.body.error.code, bad);
  }
  assert.deepEqual((await providersOf(consumer)).echo, [echo.url]);

  // PascalCase, as the reference Go registry sends (no seq).
  const extra = 'http://127.0.0.1:9';
  assert.equal((await post(JSON.stringify({ Added: [{ Name: 'echo', URL: extra }], Removed: null }))).status, 200);
  assert.deepEqual(new Set((await providersOf(consumer)).echo), new Set([echo.url, extra]));
  assert.equal((await post(JSON.stringify({ Added: [], Removed: [{ Name: 'echo', URL: extra }] }))).status, 200);
  assert.deepEqual((await providersOf(consumer)).echo, [echo.url]);
});

test('a patch with a gap in seq makes the service re-sync from the registry', async (t) => {
  const { echo, consumer } = await echoAndConsumer(t);

  // A patch that skips ahead and (wrongly) removes echo: the re-sync puts the registry's truth back.
  const res = await getJson(`${consumer.url}/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ added: [], removed: [{ name: 'echo', url: echo.url }], seq: 1000 }),
  });
  assert.equal(res.status, 200);
  await waitFor(async () => (await providersOf(consumer)).echo?.includes(echo.url), 'the re-sync to restore echo');
  await waitFor(async () => /re-syncing from the registry/.test(consumer.output()), 'the re-sync to be logged');
  const metrics = await (await fetch(`${consumer.url}/metrics`)).text();
  assert.match(metrics, /service_resyncs_total\{[^}]*\} [1-9]/);
});

test('a service started before the registry retries with backoff, then registers', async (t) => {
  const port = await freePort();
  const registryUrl = `http://127.0.0.1:${port}`;
  const echo = await startFixture('echo', registryUrl);
  t.after(() => echo.stop());
  await waitFor(() => /cannot register with .*retrying with backoff/.test(echo.output()), 'the retry warning');
  assert.equal(echo.child.exitCode, null, 'it keeps running');
  assert.equal((await getJson(`${echo.url}/heartbeat`)).status, 200);

  const reg = await startRegistry({ PORT: String(port) });
  t.after(() => reg.stop());
  await waitFor(async () => (await getJson(`${reg.url}/services?name=echo`)).body.instances.length === 1, 'the late registration', 20_000);
});

test('SIGTERM: stops taking requests, deregisters, lets in-flight requests finish, exits 0', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const echo = await startFixture('echo', reg.url);
  t.after(() => echo.stop('SIGKILL'));
  await waitFor(async () => (await getJson(`${reg.url}/services?name=echo`)).body.instances.length === 1, 'the registration');

  const inFlight = getJson(`${echo.url}/slow?ms=1500`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const exit = echo.stop('SIGTERM');
  await waitFor(async () => (await getJson(`${reg.url}/services?name=echo`)).body.instances.length === 0, 'the deregistration');
  const slow = await inFlight;
  assert.equal(slow.status, 200, 'the in-flight request finished');
  assert.equal(slow.body.sleptMs, 1500);
  assert.equal(await exit, 0);
  await assert.rejects(fetch(`${echo.url}/heartbeat`), 'no longer taking requests');
});

test('SIGTERM and SIGINT exit 0 also when the registry is gone', async (t) => {
  const { reg, a, b } = await twoEchoes(t);
  await waitFor(async () => (await getJson(`${reg.url}/services?name=echo`)).body.instances.length === 2, 'the registrations');
  await reg.stop('SIGKILL');

  const started = Date.now();
  assert.equal(await a.stop('SIGTERM'), 0);
  assert.equal(await b.stop('SIGINT'), 0);
  assert.ok(Date.now() - started < 10_000);
  assert.match(a.output(), /could not deregister/);
});

test('the registry itself exits 0 on SIGTERM and SIGINT', async () => {
  const a = await startRegistry();
  assert.equal(await a.stop('SIGTERM'), 0);
  const b = await startRegistry();
  assert.equal(await b.stop('SIGINT'), 0);
});
