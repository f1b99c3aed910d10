/**
 * The registry's HTTP protocol, spoken raw: registration and the first patch, Go-style bodies,
 * idempotent re-registration, deregistration both ways, the admin listing, the event stream,
 * leases, /health, /metrics, and every bad input (with proof that nothing was registered or lost).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { getJson, rawRequest, startRegistry, startStub, waitFor, type Stub } from './helpers.ts';
import { RegistryClient } from '../registry/client.ts';
import type { RegistryEvent } from '../registry/protocol.ts';

type Registry = Awaited<ReturnType<typeof startRegistry>>;

async function registry(t: TestContext, env: Record<string, string> = {}): Promise<Registry> {
  const reg = await startRegistry(env);
  t.after(() => reg.stop());
  return reg;
}

async function stub(t: TestContext, options: { hangPatches?: boolean } = {}): Promise<Stub> {
  const s = await startStub(options);
  t.after(() => s.close());
  return s;
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return getJson(`${url}/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function listing(url: string, query = '') {
  const { status, body } = await getJson(`${url}/services${query}`);
  assert.equal(status, 200);
  return body.instances as any[];
}

test('registration answers 200 with the id and providers, and the first patch lists the live providers', async (t) => {
  const reg = await registry(t);
  const provider = await stub(t);
  const consumer = await stub(t);

  const first = await post(reg.url, provider.registration('echo'));
  assert.equal(first.status, 200);
  assert.match(first.body.instanceId, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(first.body.providers, {});

  const second = await post(reg.url, consumer.registration('consumer', ['echo', 'missing']));
  assert.equal(second.status, 200);
  assert.deepEqual(second.body.providers, { echo: [provider.url], missing: [] });
  // The first patch is delivered before the answer (as the reference registry does), and the answer carries its seq.
  assert.equal(consumer.patches.length, 1, 'the first patch arrived before the answer');
  assert.equal(second.body.seq, 1);
  assert.deepEqual(consumer.patches[0].body, { added: [{ name: 'echo', url: provider.url }], removed: [], seq: 1 });
  assert.equal(consumer.patches[0].authorization, undefined);

  // Registering the same serviceURL again updates that instance: same id, no duplicate.
  const again = await post(reg.url, { ...provider.registration('echo'), metadata: { version: '2' } });
  assert.equal(again.status, 200);
  assert.equal(again.body.instanceId, first.body.instanceId);
  const instances = await listing(reg.url);
  assert.equal(instances.length, 2);
  const echo = instances.find((i) => i.serviceName === 'echo');
  assert.deepEqual(echo.metadata, { version: '2' });

  // The listing gives state, registered-at, last check, latency, failures and required services.
  const view = await waitFor(async () => (await listing(reg.url)).find((i) => i.serviceName === 'consumer' && i.lastCheckAt), 'a heartbeat check');
  assert.equal(view.state, 'up');
  assert.ok(Date.parse(view.registeredAt) > 0);
  assert.equal(typeof view.lastLatencyMs, 'number');
  assert.equal(view.consecutiveFailures, 0);
  assert.deepEqual(view.requiredServices, ['echo', 'missing']);
  await waitFor(() => provider.heartbeats > 0, 'a heartbeat check of the provider');
});

test('dependents, and only they, are told when an instance appears and leaves', async (t) => {
  const reg = await registry(t);
  const dependent = await stub(t);
  const bystander = await stub(t);
  const provider = await stub(t);
  await post(reg.url, dependent.registration('dependent', ['echo']));
  await post(reg.url, bystander.registration('bystander', ['other']));

  const { body } = await post(reg.url, provider.registration('echo'));
  await waitFor(() => dependent.patches.some((p) => p.body.added?.some((e) => e.url === provider.url)), 'the added patch');

  const deleted = await getJson(`${reg.url}/services/${body.instanceId}`, { method: 'DELETE' });
  assert.equal(deleted.status, 200);
  assert.equal(deleted.body.deregistered.serviceURL, provider.url);
  await waitFor(() => dependent.patches.some((p) => p.body.removed?.some((e) => e.url === provider.url)), 'the removed patch');

  // Patches to one subscriber are numbered 1, 2, 3… in order.
  assert.deepEqual(dependent.patches.map((p) => p.body.seq), dependent.patches.map((_, i) => i + 1));
  assert.deepEqual(
    bystander.patches.map((p) => p.body),
    [{ added: [], removed: [], seq: 1 }],
    'a service that does not require echo hears nothing about it (only its own first patch, empty)',
  );
  assert.equal((await listing(reg.url, '?name=echo')).length, 0);
});

test('a Go-style PascalCase registration works, and DELETE with the URL as a bare body deregisters', async (t) => {
  const reg = await registry(t);
  const goService = await stub(t);
  const provider = await stub(t);
  await post(reg.url, provider.registration('LogService'));

  const answer = await post(reg.url, {
    ServiceName: 'GradingService',
    ServiceURL: goService.url,
    RequiredServices: ['LogService'],
    ServiceUpdateURL: `${goService.url}/services`,
    HeartbeatURL: `${goService.url}/heartbeat`,
  });
  assert.equal(answer.status, 200);
  await waitFor(() => goService.patches.length > 0, 'the first patch to the Go service');
  assert.deepEqual(goService.patches[0].body.added, [{ name: 'LogService', url: provider.url }]);
  const [view] = await listing(reg.url, '?name=GradingService');
  assert.deepEqual(view.requiredServices, ['LogService']);

  // Exactly what Go's http.NewRequest(DELETE, url, bytes.NewBuffer([]byte(serviceURL))) sends: no Content-Type.
  const deleted = await rawRequest(`${reg.url}/services`, { method: 'DELETE', body: goService.url });
  assert.equal(deleted.status, 200);
  assert.equal((await listing(reg.url, '?name=GradingService')).length, 0);

  // And with text/plain, as the reference client sets it.
  const deletedToo = await rawRequest(`${reg.url}/services`, { method: 'DELETE', body: provider.url, headers: { 'content-type': 'text/plain' } });
  assert.equal(deletedToo.status, 200);
  assert.equal((await listing(reg.url)).length, 0);
});

test('GET /services?name= filters, /health answers, /metrics is Prometheus text', async (t) => {
  const reg = await registry(t);
  const a = await stub(t);
  const b = await stub(t);
  const c = await stub(t);
  await post(reg.url, a.registration('alpha'));
  await post(reg.url, b.registration('beta'));
  await post(reg.url, c.registration('alpha'));
  assert.equal((await listing(reg.url)).length, 3);
  assert.deepEqual((await listing(reg.url, '?name=alpha')).map((i) => i.serviceURL).sort(), [a.url, c.url].sort());
  assert.equal((await listing(reg.url, '?name=alpha,beta')).length, 3);
  assert.equal((await listing(reg.url, '?name=nothing')).length, 0);

  const health = await getJson(`${reg.url}/health`);
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  assert.equal(health.body.instances, 3);

  const metrics = await fetch(`${reg.url}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
  const text = await metrics.text();
  // One series per service and state, so an operator sees which service is short.
  assert.match(text, /registry_instances\{service="alpha",state="up"\} 2/);
  assert.match(text, /registry_instances\{service="beta",state="up"\} 1/);
  assert.match(text, /registry_instances\{service="beta",state="down"\} 0/);
  assert.match(text, /registry_registrations_total/);
  assert.match(text, /process_resident_memory_bytes/);
});

test('GET /services/stream sends a snapshot, then every change', async (t) => {
  const reg = await registry(t);
  const early = await stub(t);
  await post(reg.url, early.registration('early'));
  const events: RegistryEvent[] = [];
  const abort = new AbortController();
  t.after(() => abort.abort());
  const watching = new RegistryClient({ registryUrl: reg.url }).watch((event) => events.push(event), abort.signal);
  await waitFor(() => events.some((e) => e.type === 'snapshot'), 'the snapshot');
  const snapshot = events.find((e) => e.type === 'snapshot') as Extract<RegistryEvent, { type: 'snapshot' }>;
  assert.deepEqual(snapshot.instances.map((i) => i.serviceName), ['early']);

  const late = await stub(t);
  const { body } = await post(reg.url, late.registration('late'));
  await waitFor(() => events.some((e) => e.type === 'registered' && e.instance.instanceId === body.instanceId), 'the registered event');
  await getJson(`${reg.url}/services/${body.instanceId}`, { method: 'DELETE' });
  await waitFor(() => events.some((e) => e.type === 'deregistered' && e.instance.instanceId === body.instanceId), 'the deregistered event');
  await waitFor(() => events.some((e) => e.type === 'checked'), 'a checked event');
  abort.abort();
  await watching;
});

test('leases: renewed leases stay up, a lapsed lease is down (dependents told), renewing brings it back', async (t) => {
  const reg = await registry(t);
  const dependent = await stub(t);
  const worker = await stub(t);
  await post(reg.url, dependent.registration('dependent', ['worker']));
  const { status, body } = await post(reg.url, { serviceName: 'worker', serviceURL: worker.url, ttlSeconds: 1 });
  assert.equal(status, 200);
  assert.ok(Date.parse(body.leaseExpiresAt) > Date.now());
  const id = body.instanceId as string;
  const renew = () => getJson(`${reg.url}/services/${id}/lease`, { method: 'PUT' });

  for (let i = 0; i < 3; i++) {
    const renewed = await renew();
    assert.equal(renewed.status, 200);
    assert.equal(renewed.body.instanceId, id);
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
  assert.equal((await listing(reg.url, '?name=worker'))[0].state, 'up');

  // Stop renewing: after the ttl the lease has lapsed.
  await waitFor(async () => (await listing(reg.url, '?name=worker'))[0].state === 'down', 'the lapsed lease', 10_000);
  await waitFor(() => dependent.patches.some((p) => p.body.removed?.some((e) => e.url === worker.url)), 'the removed patch');
  assert.equal(worker.heartbeats, 0, 'a leased instance is not heartbeat-checked');

  assert.equal((await renew()).status, 200);
  assert.equal((await listing(reg.url, '?name=worker'))[0].state, 'up');
  await waitFor(() => dependent.patches.filter((p) => p.body.added?.some((e) => e.url === worker.url)).length >= 2, 'the added patch');

  const unknown = await getJson(`${reg.url}/services/no-such-instance/lease`, { method: 'PUT' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'unknown_instance');
  const heartbeatChecked = (await listing(reg.url, '?name=dependent'))[0].instanceId;
  assert.equal((await getJson(`${reg.url}/services/${heartbeatChecked}/lease`, { method: 'PUT' })).status, 409);
});

test('REGISTRY_TOKEN: changes need the bearer token (401 otherwise), reads do not, patches carry it', async (t) => {
  const token = 's3cret-token';
  const reg = await registry(t, { REGISTRY_TOKEN: token });
  const auth = { authorization: `Bearer ${token}` };
  const provider = await stub(t);
  const consumer = await stub(t);

  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: token }] as Record<string, string>[]) {
    const refused = await post(reg.url, provider.registration('echo'), headers);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, 'unauthorized');
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
  }
  assert.equal((await listing(reg.url)).length, 0, 'nothing was registered');

  const { body } = await post(reg.url, provider.registration('echo'), auth);
  assert.ok(body.instanceId);
  await post(reg.url, consumer.registration('consumer', ['echo']), auth);
  await waitFor(() => consumer.patches.length > 0, 'the first patch');
  assert.equal(consumer.patches[0].authorization, `Bearer ${token}`);

  const refusedDelete = await getJson(`${reg.url}/services/${body.instanceId}`, { method: 'DELETE' });
  assert.equal(refusedDelete.status, 401);
  const refusedPlain = await rawRequest(`${reg.url}/services`, { method: 'DELETE', body: provider.url });
  assert.equal(refusedPlain.status, 401);
  const refusedLease = await getJson(`${reg.url}/services/${body.instanceId}/lease`, { method: 'PUT' });
  assert.equal(refusedLease.status, 401);
  assert.equal((await listing(reg.url)).length, 2, 'nothing was deregistered');

  const deleted = await getJson(`${reg.url}/services/${body.instanceId}`, { method: 'DELETE', headers: auth });
  assert.equal(deleted.status, 200);
  assert.equal((await listing(reg.url)).length, 1);
});

test('every bad input gets a clear 4xx naming the field, and nothing is registered or lost', async (t) => {
  const reg = await registry(t);
  const existing = await stub(t);
  const other = await stub(t);
  const { body: kept } = await post(reg.url, existing.registration('kept'));
  const before = JSON.stringify((await listing(reg.url)).map((i) => [i.instanceId, i.serviceName, i.serviceURL]));
  const good = other.registration('other');

  const cases: { what: string; send: () => Promise<{ status: number; body: any }>; status: number; code: string; mentions?: RegExp }[] = [
    { what: 'malformed JSON', send: () => post(reg.url, '{"serviceName": "x",'), status: 400, code: 'malformed_json', mentions: /JSON/ },
    { what: 'a JSON array', send: () => post(reg.url, '[]'), status: 400, code: 'invalid_field', mentions: /body/ },
    { what: 'missing serviceName', send: () => post(reg.url, { ...good, serviceName: undefined }), status: 400, code: 'invalid_field', mentions: /serviceName/ },
    { what: 'empty serviceName', send: () => post(reg.url, { ...good, serviceName: '' }), status: 400, code: 'invalid_field', mentions: /serviceName: must not be empty/ },
    { what: 'blank serviceName', send: () => post(reg.url, { ...good, serviceName: '   ' }), status: 400, code: 'invalid_field', mentions: /serviceName/ },
    { what: 'serviceName with a slash', send: () => post(reg.url, { ...good, serviceName: 'a/b' }), status: 400, code: 'invalid_field', mentions: /serviceName/ },
    { what: 'serviceName a number', send: () => post(reg.url, { ...good, serviceName: 42 }), status: 400, code: 'invalid_field', mentions: /serviceName/ },
    { what: 'missing serviceURL', send: () => post(reg.url, { ...good, serviceURL: undefined }), status: 400, code: 'invalid_field', mentions: /serviceURL/ },
    { what: 'ftp serviceURL', send: () => post(reg.url, { ...good, serviceURL: 'ftp://127.0.0.1/x' }), status: 400, code: 'invalid_field', mentions: /serviceURL: must be an http\(s\) URL/ },
    { what: 'serviceURL not a URL', send: () => post(reg.url, { ...good, serviceURL: 'not a url' }), status: 400, code: 'invalid_field', mentions: /serviceURL/ },
    { what: 'javascript: heartbeatURL', send: () => post(reg.url, { ...good, heartbeatURL: 'javascript:alert(1)' }), status: 400, code: 'invalid_field', mentions: /heartbeatURL/ },
    { what: 'file: serviceUpdateURL', send: () => post(reg.url, { ...good, serviceUpdateURL: 'file:///etc/passwd' }), status: 400, code: 'invalid_field', mentions: /serviceUpdateURL/ },
    { what: 'missing heartbeatURL (no lease)', send: () => post(reg.url, { ...good, heartbeatURL: undefined }), status: 400, code: 'invalid_field', mentions: /heartbeatURL/ },
    { what: 'requiredServices not a list', send: () => post(reg.url, { ...good, requiredServices: 'echo' }), status: 400, code: 'invalid_field', mentions: /requiredServices/ },
    { what: 'an empty required name', send: () => post(reg.url, { ...good, requiredServices: [''] }), status: 400, code: 'invalid_field', mentions: /requiredServices\.0/ },
    { what: 'requirements without an update URL', send: () => post(reg.url, { ...good, requiredServices: ['echo'], serviceUpdateURL: undefined }), status: 400, code: 'invalid_field', mentions: /serviceUpdateURL/ },
    { what: 'metadata not strings', send: () => post(reg.url, { ...good, metadata: { a: 1 } }), status: 400, code: 'invalid_field', mentions: /metadata/ },
    { what: 'negative ttlSeconds', send: () => post(reg.url, { ...good, ttlSeconds: -1 }), status: 400, code: 'invalid_field', mentions: /ttlSeconds/ },
    { what: 'a bad instanceId', send: () => post(reg.url, { ...good, instanceId: '../x' }), status: 400, code: 'invalid_field', mentions: /instanceId/ },
    { what: 'foreign heartbeat host', send: () => post(reg.url, { ...good, heartbeatURL: 'http://169.254.169.254/latest/meta-data' }), status: 400, code: 'foreign_host', mentions: /heartbeatURL: must be on the serviceURL's host/ },
    { what: 'foreign update host', send: () => post(reg.url, { ...good, requiredServices: ['x'], serviceUpdateURL: 'http://example.com/services' }), status: 400, code: 'foreign_host', mentions: /serviceUpdateURL/ },
    { what: 'a serviceURL on another machine', send: () => post(reg.url, { ...good, serviceURL: 'http://192.0.2.10:80', heartbeatURL: 'http://192.0.2.10:80/heartbeat', serviceUpdateURL: undefined }), status: 403, code: 'foreign_host', mentions: /serviceURL/ },
    { what: 'not JSON', send: () => getJson(`${reg.url}/services`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }), status: 415, code: 'unsupported_media_type' },
    { what: 'a body over 64 KiB', send: () => post(reg.url, { ...good, metadata: { big: 'x'.repeat(70 * 1024) } }), status: 413, code: 'payload_too_large' },
    { what: 'an untyped body over 64 KiB', send: () => rawRequest(`${reg.url}/services`, { method: 'POST', body: Buffer.alloc(65 * 1024, 'a') }), status: 413, code: 'payload_too_large' },
    { what: 'DELETE of an unknown id', send: () => getJson(`${reg.url}/services/no-such-id`, { method: 'DELETE' }), status: 404, code: 'unknown_instance', mentions: /no-such-id/ },
    { what: 'DELETE of an unknown URL', send: () => rawRequest(`${reg.url}/services`, { method: 'DELETE', body: 'http://127.0.0.1:1/nobody' }), status: 404, code: 'unknown_instance', mentions: /127\.0\.0\.1:1/ },
    { what: 'DELETE with an empty body', send: () => rawRequest(`${reg.url}/services`, { method: 'DELETE' }), status: 400, code: 'invalid_field', mentions: /body/ },
    { what: 'DELETE with a non-URL body', send: () => rawRequest(`${reg.url}/services`, { method: 'DELETE', body: 'rm -rf /' }), status: 400, code: 'invalid_field' },
    { what: 'DELETE with an id that is not one', send: () => getJson(`${reg.url}/services/a.b`, { method: 'DELETE' }), status: 400, code: 'invalid_field', mentions: /instance id/ },
    { what: 'a lease for an unknown instance', send: () => getJson(`${reg.url}/services/nobody/lease`, { method: 'PUT' }), status: 404, code: 'unknown_instance' },
    { what: 'a wrong method', send: () => getJson(`${reg.url}/services`, { method: 'PATCH' }), status: 405, code: 'method_not_allowed' },
    { what: 'an unknown route', send: () => getJson(`${reg.url}/nothing-here`), status: 404, code: 'not_found' },
  ];
  for (const c of cases) {
    const { status, body } = await c.send();
    assert.equal(status, c.status, `${c.what}: status (${JSON.stringify(body)})`);
    assert.equal(body?.error?.code, c.code, `${c.what}: code (${JSON.stringify(body)})`);
    assert.equal(typeof body.error.message, 'string', `${c.what}: message`);
    if (c.mentions) assert.match(body.error.message, c.mentions, `${c.what}: message names the field`);
    assert.doesNotMatch(JSON.stringify(body), /at .*\.ts:\d+/, `${c.what}: no stack trace`);
    const now = JSON.stringify((await listing(reg.url)).map((i) => [i.instanceId, i.serviceName, i.serviceURL]));
    assert.equal(now, before, `${c.what}: nothing registered or lost`);
  }
  assert.equal(other.patches.length + other.heartbeats, 0, 'the registry never called the refused service');
  assert.equal((await getJson(`${reg.url}/health`)).status, 200, 'the registry is still up');
  assert.ok(kept.instanceId);
});

test('a registry that is stopped writes its registrations atomically under DATA_DIR', async (t) => {
  const reg = await registry(t);
  const a = await stub(t);
  await post(reg.url, a.registration('alpha'));
  assert.equal(await reg.stop('SIGTERM'), 0);
  const saved = JSON.parse(fs.readFileSync(path.join(reg.dataDir, 'registrations.json'), 'utf8'));
  assert.equal(saved.instances.length, 1);
  assert.equal(saved.instances[0].serviceURL, a.url);
  assert.deepEqual(fs.readdirSync(reg.dataDir).filter((f) => f.endsWith('.tmp')), []);
});

test('bad statuses put an instance down after HEARTBEAT_FAILURES in a row; EVICT_AFTER_MS later it is forgotten', async (t) => {
  const reg = await registry(t, { HEARTBEAT_FAILURES: '3', EVICT_AFTER_MS: '1500' });
  const dependent = await stub(t);
  await post(reg.url, dependent.registration('dependent', ['sick']));
  const http = await import('node:http');
  let status = 200;
  const sick = http.createServer((_req, res) => res.writeHead(status).end());
  await new Promise<void>((resolve) => sick.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => (sick.closeAllConnections(), sick.close(() => resolve()))));
  const url = `http://127.0.0.1:${(sick.address() as import('node:net').AddressInfo).port}`;
  await post(reg.url, { serviceName: 'sick', serviceURL: url, heartbeatURL: `${url}/heartbeat` });
  await waitFor(() => dependent.patches.some((p) => p.body.added?.some((e) => e.url === url)), 'the added patch');

  status = 503;
  const down = await waitFor(async () => (await listing(reg.url, '?name=sick')).find((i) => i.state === 'down'), 'the instance to be down');
  assert.equal(down.consecutiveFailures, 3, 'down on the third bad status in a row, not before');
  assert.match(down.lastError, /503/);
  await waitFor(() => dependent.patches.some((p) => p.body.removed?.some((e) => e.url === url)), 'the removed patch');

  await waitFor(async () => (await listing(reg.url, '?name=sick')).length === 0, 'the eviction');
  assert.match(reg.output(), /evicting sick/);
});

test('listening on a non-loopback address without REGISTRY_TOKEN logs a loud warning', async (t) => {
  const reg = await registry(t, { HOST: '0.0.0.0' });
  await waitFor(() => /without REGISTRY_TOKEN/.test(reg.output()), 'the warning');
  const quiet = await registry(t);
  assert.doesNotMatch(quiet.output(), /without REGISTRY_TOKEN/);
});
