/**
 * What the registry's answers promise: a 200 is on disk (SIGKILL mid-flood loses nothing acknowledged),
 * an instanceId belongs to its serviceURL, and a new instance's first patch arrives before its answer.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, getJson, startRegistry, startStub, tempDir, waitFor } from './helpers.ts';

const post = (url: string, body: unknown) =>
  getJson(`${url}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function listedUrls(registryUrl: string): Promise<Set<string>> {
  return new Set((await getJson(`${registryUrl}/services`)).body.instances.map((i: any) => i.serviceURL as string));
}

test('every acknowledged registration and deregistration survives a SIGKILL in the middle of a flood', async (t) => {
  const port = String(await freePort());
  const dataDir = tempDir('registry-durable-');
  let reg = await startRegistry({ PORT: port, HEARTBEAT_INTERVAL_MS: '60000' }, dataDir);
  t.after(() => reg.stop('SIGKILL'));
  // Registrations on paths of one loopback origin that nobody serves: only what the registry keeps matters here.
  const urlOf = (n: number) => `http://127.0.0.1:9/instance-${n}`;
  const acknowledged = new Set<string>();
  const deregistered = new Set<string>();
  const deregistering = new Set<string>();
  const killAfter = 400;
  let next = 0;
  let killed = false;
  const lane = async () => {
    while (!killed && next < 1000) {
      const n = next++;
      try {
        const { status } = await post(reg.url, { serviceName: 'flood', serviceURL: urlOf(n), heartbeatURL: `${urlOf(n)}/heartbeat` });
        if (status === 200) acknowledged.add(urlOf(n));
        // Every tenth one is taken back again: an acknowledged deregistration must stay done.
        if (status === 200 && n % 10 === 0 && !killed) {
          // Sent, so it may be done even if the kill cuts off its answer: such an instance may be gone.
          deregistering.add(urlOf(n));
          const gone = await getJson(`${reg.url}/services`, { method: 'DELETE', body: urlOf(n) });
          if (gone.status === 200) deregistered.add(urlOf(n));
        }
      } catch {
        // the registry died under this request: it was never acknowledged
      }
      if (acknowledged.size >= killAfter && !killed) {
        killed = true;
        reg.child.kill('SIGKILL');
      }
    }
  };
  await Promise.all([lane(), lane(), lane(), lane()]);
  await reg.exited;
  assert.ok(acknowledged.size >= killAfter, `${acknowledged.size} registrations acknowledged before the kill`);

  reg = await startRegistry({ PORT: port, HEARTBEAT_INTERVAL_MS: '60000' }, dataDir);
  const restored = await listedUrls(reg.url);
  const lost = [...acknowledged].filter((url) => !deregistering.has(url) && !restored.has(url));
  assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.size} acknowledged registrations lost`);
  const back = [...deregistered].filter((url) => restored.has(url));
  assert.deepEqual(back, [], `${back.length} of ${deregistered.size} acknowledged deregistrations came back`);
  t.diagnostic(`${acknowledged.size} registrations and ${deregistered.size} deregistrations acknowledged before the SIGKILL; ${restored.size} restored`);
});

test('an acknowledged lease renewal survives a SIGKILL', async (t) => {
  const port = String(await freePort());
  const dataDir = tempDir('registry-lease-');
  let reg = await startRegistry({ PORT: port }, dataDir);
  t.after(() => reg.stop('SIGKILL'));
  const first = await post(reg.url, { serviceName: 'leased', serviceURL: 'http://127.0.0.1:9/leased', ttlSeconds: 600 });
  assert.equal(first.status, 200);
  const renewed = await getJson(`${reg.url}/services/${first.body.instanceId}/lease`, { method: 'PUT' });
  assert.equal(renewed.status, 200);
  reg.child.kill('SIGKILL');
  await reg.exited;
  reg = await startRegistry({ PORT: port }, dataDir);
  const [instance] = (await getJson(`${reg.url}/services?name=leased`)).body.instances;
  assert.equal(instance.leaseExpiresAt, renewed.body.leaseExpiresAt, 'the renewed lease, not the first one');
});

test('an instanceId is honoured only for its own serviceURL: another URL gets 409 and nothing changes', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const victim = await startStub();
  t.after(() => victim.close());
  const attacker = await startStub();
  t.after(() => attacker.close());
  const registered = await post(reg.url, victim.registration('victim'));
  assert.equal(registered.status, 200);
  const id = registered.body.instanceId as string;
  // Who is registered where (check times move on by themselves).
  const identities = async () => (await getJson(`${reg.url}/services`)).body.instances.map((i: any) => `${i.instanceId} ${i.serviceName} ${i.serviceURL} ${i.registeredAt}`);
  const before = await identities();

  const hijack = await post(reg.url, { ...attacker.registration('victim'), instanceId: id });
  assert.equal(hijack.status, 409);
  assert.equal(hijack.body.error.code, 'instance_id_in_use');
  assert.deepEqual(await identities(), before, 'the victim is where it was, and the attacker is not listed');

  // The same URL may bring its own id again, and an id the registry no longer holds is free to take.
  assert.equal((await post(reg.url, { ...victim.registration('victim'), instanceId: id })).status, 200);
  assert.equal((await getJson(`${reg.url}/services/${id}`, { method: 'DELETE' })).status, 200);
  const taken = await post(reg.url, { ...attacker.registration('other'), instanceId: id });
  assert.equal(taken.status, 200);
  assert.equal(taken.body.instanceId, id);
});

/**
 * Like the reference Go course's services: PascalCase fields, no seq, providers learnt only from
 * patches, and a lookup the moment the registration is answered.
 */
async function goStyleService(
  t: TestContext,
  registryUrl: string,
  name: string,
  requires: string[],
  updateBehaviour: 'answer' | 'hang' | 'refuse' = 'answer',
) {
  const providers = new Map<string, string[]>();
  let patches = 0;
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      if (req.method === 'GET') return res.end('ok');
      if (updateBehaviour === 'hang') return;
      const patch = JSON.parse(text) as { Added?: { Name: string; URL: string }[]; added?: { name: string; url: string }[] };
      patches++;
      for (const entry of patch.added ?? []) providers.set(entry.name, [...(providers.get(entry.name) ?? []), entry.url]);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const updateURL = updateBehaviour === 'refuse' ? `http://127.0.0.1:9/services` : `${url}/services`;
  const started = Date.now();
  const answer = await getJson(`${registryUrl}/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ServiceName: name, ServiceURL: url, RequiredServices: requires, ServiceUpdateURL: updateURL, HeartbeatURL: `${url}/heartbeat` }),
  });
  // What the Go service does next: look its provider up in the table the patches filled.
  const seenAtAnswer = { patches, providers: new Map(providers) };
  return {
    status: answer.status,
    answeredInMs: Date.now() - started,
    seenAtAnswer,
    close,
  };
}

test('a Go-course-style service finds its provider the moment its registration is answered, every time', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const log = await startStub();
  t.after(() => log.close());
  assert.equal((await post(reg.url, log.registration('log'))).status, 200);
  for (let start = 0; start < 10; start++) {
    const grades = await goStyleService(t, reg.url, 'grades', ['log']);
    await grades.close();
    assert.equal(grades.status, 200);
    assert.deepEqual(grades.seenAtAnswer.providers.get('log'), [log.url], `start ${start + 1}: the log service was in the table at the answer`);
  }
  // With no provider at all, the first patch still comes first (empty, as the reference sends it).
  const lonely = await goStyleService(t, reg.url, 'portal', ['nosuch']);
  await lonely.close();
  assert.equal(lonely.seenAtAnswer.patches, 1, 'an empty first patch before the answer');
});

test('an update URL that hangs or refuses holds the answer no longer than NOTIFY_TIMEOUT_MS', async (t) => {
  const reg = await startRegistry({ NOTIFY_TIMEOUT_MS: '500' });
  t.after(() => reg.stop());
  for (const behaviour of ['hang', 'refuse'] as const) {
    const service = await goStyleService(t, reg.url, `update-${behaviour}`, [], behaviour);
    await service.close();
    assert.equal(service.status, 200);
    assert.ok(service.answeredInMs < 1500, `${behaviour}: answered after ${service.answeredInMs} ms`);
  }
});

test('a subscriber is never given up on while it is up, and is sent nothing while it is down', async (t) => {
  const reg = await startRegistry({ NOTIFY_RETRIES: '1', NOTIFY_TIMEOUT_MS: '300' });
  t.after(() => reg.stop());
  // A subscriber whose update URL fails for a while (longer than the retries), then works.
  let failUpdates = true;
  let heartbeatsOk = true;
  const patches: { added: any[]; removed: any[]; seq: number }[] = [];
  let attemptsWhileDown = 0;
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      if (req.method === 'GET') return res.writeHead(heartbeatsOk ? 200 : 503).end();
      if (!heartbeatsOk) attemptsWhileDown++;
      if (failUpdates) return res.writeHead(500).end();
      patches.push(JSON.parse(text));
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const subscriber = await post(reg.url, { serviceName: 'sub', serviceURL: url, requiredServices: ['echo'], serviceUpdateURL: `${url}/services`, heartbeatURL: `${url}/heartbeat` });
  assert.equal(subscriber.status, 200);
  const echo = await startStub();
  t.after(() => echo.close());
  assert.equal((await post(reg.url, echo.registration('echo'))).status, 200);
  // Past NOTIFY_RETRIES (reported as stuck), and then the update URL recovers: the patch still arrives.
  await waitFor(() => reg.output().includes('is not through after 2 attempts'), 'the registry to report the stuck patch');
  failUpdates = false;
  await waitFor(() => patches.some((p) => p.added.some((e) => e.url === echo.url)), 'the patch with echo, after the update URL recovered', 20_000);
  assert.doesNotMatch(reg.output(), /gave up/);

  // Down: changes wait instead of being sent to nobody; they arrive, merged, when it is up again.
  heartbeatsOk = false;
  await waitFor(async () => (await getJson(`${reg.url}/services?name=sub`)).body.instances[0].state === 'down', 'the subscriber to be down');
  assert.equal((await getJson(`${reg.url}/services`, { method: 'DELETE', body: echo.url })).status, 200);
  const other = await startStub();
  t.after(() => other.close());
  assert.equal((await post(reg.url, other.registration('echo'))).status, 200);
  await waitFor(async () => (await getJson(`${reg.url}/services?name=echo`)).body.instances.length === 1, 'the registry to have the changes');
  const countWhileDown = patches.length;
  heartbeatsOk = true;
  await waitFor(() => patches.length > countWhileDown && patches.at(-1)!.added.some((e) => e.url === other.url), 'the merged patch after coming back');
  assert.equal(attemptsWhileDown, 0, 'no patch was sent while the subscriber was down');
  const afterReturn = patches.slice(countWhileDown);
  assert.equal(afterReturn.length, 1, 'what waited arrives merged into one patch');
  assert.ok(afterReturn[0].removed.some((e) => e.url === echo.url), 'the removal it missed while down arrives too');
});
