/**
 * Failure detection with real processes: a provider killed with SIGKILL, one stopped with SIGSTOP
 * (hung) and resumed, and a subscriber that never answers its patches. Times are measured from the
 * signal to the moment a dependent (a stub in this process) receives the patch, and held to the
 * issue's bounds, which already include one second of slack.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, providersOf, startFixture, startRegistry, startStub, waitFor, type Stub } from './helpers.ts';

const INTERVAL_MS = 200;
const TIMEOUT_MS = 300;
const ENV = { HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS), HEARTBEAT_TIMEOUT_MS: String(TIMEOUT_MS), HEARTBEAT_FAILURES: '3' };

async function setup(t: TestContext, env: Record<string, string> = {}) {
  const reg = await startRegistry({ ...ENV, ...env });
  t.after(() => reg.stop());
  return reg;
}

async function dependentStub(t: TestContext, registryUrl: string, requires: string[], options: { hangPatches?: boolean } = {}): Promise<Stub> {
  const stub = await startStub(options);
  t.after(() => stub.close());
  const res = await getJson(`${registryUrl}/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(stub.registration(`watcher-${requires.join('-')}`, requires)),
  });
  assert.equal(res.status, 200);
  return stub;
}

function removedAt(stub: Stub, url: string, after: number): number | undefined {
  return stub.patches.find((p) => p.at >= after && p.body.removed?.some((e) => e.url === url))?.at;
}

function addedAt(stub: Stub, url: string, after: number): number | undefined {
  return stub.patches.find((p) => p.at >= after && p.body.added?.some((e) => e.url === url))?.at;
}

test('dependents are told of add, remove (SIGTERM deregisters), down (SIGKILL) and up', async (t) => {
  const reg = await setup(t);
  const watcher = await dependentStub(t, reg.url, ['echo']);
  const consumer = await startFixture('consumer', reg.url, ['echo']);
  t.after(() => consumer.stop());

  // add
  const first = await startFixture('echo', reg.url);
  t.after(() => first.stop('SIGKILL'));
  await waitFor(() => addedAt(watcher, first.url, 0), 'the added patch');
  await waitFor(async () => (await providersOf(consumer)).echo?.includes(first.url), 'the consumer to learn of echo');

  // remove: a graceful stop deregisters, it is not discovered by a failed check
  const stoppedAt = Date.now();
  assert.equal(await first.stop('SIGTERM'), 0);
  await waitFor(() => removedAt(watcher, first.url, stoppedAt), 'the removed patch');
  await waitFor(async () => (await providersOf(consumer)).echo?.length === 0, 'the consumer to forget echo');
  assert.match(first.output(), /deregistered/);

  // down: SIGKILL, told within interval + 1 s
  const second = await startFixture('echo', reg.url);
  t.after(() => second.stop('SIGKILL'));
  await waitFor(() => addedAt(watcher, second.url, 0), 'the second added patch');
  await waitFor(async () => (await providersOf(consumer)).echo?.includes(second.url), 'the consumer to learn of the second echo');
  const killedAt = Date.now();
  second.child.kill('SIGKILL');
  const toldAt = (await waitFor(() => removedAt(watcher, second.url, killedAt), 'the down patch', 15_000))!;
  const elapsed = toldAt - killedAt;
  t.diagnostic(`SIGKILL → dependents told in ${elapsed} ms (bound ${INTERVAL_MS + 1000} ms)`);
  assert.ok(elapsed <= INTERVAL_MS + 1000, `told after ${elapsed} ms, bound ${INTERVAL_MS + 1000} ms`);
  await waitFor(async () => (await providersOf(consumer)).echo?.length === 0, 'the consumer to drop the dead echo');
  // The check that found it dead may have connected while the dying process still held its listening socket
  // (read ECONNRESET); the checks after it, on a port nobody listens on, are refused.
  const view = await waitFor(async () => {
    const [instance] = (await getJson(`${reg.url}/services?name=echo`)).body.instances;
    return /ECONNREFUSED/.test(instance.lastError ?? '') && instance;
  }, 'a refused check of the dead echo', 5000);
  assert.equal(view.state, 'down');
  assert.match(view.lastError, /ECONNREFUSED/);
});

test('a hung provider (SIGSTOP) is down within interval × 3 + timeout + 1 s, and up again after SIGCONT', async (t) => {
  const reg = await setup(t);
  const watcher = await dependentStub(t, reg.url, ['echo']);
  const consumer = await startFixture('consumer', reg.url, ['echo']);
  t.after(() => consumer.stop());
  const echo = await startFixture('echo', reg.url);
  t.after(async () => {
    echo.child.kill('SIGCONT');
    await echo.stop('SIGKILL');
  });
  await waitFor(async () => (await providersOf(consumer)).echo?.includes(echo.url), 'the consumer to learn of echo');

  const stoppedAt = Date.now();
  echo.child.kill('SIGSTOP');
  const bound = INTERVAL_MS * 3 + TIMEOUT_MS + 1000;
  const toldAt = (await waitFor(() => removedAt(watcher, echo.url, stoppedAt), 'the down patch', 15_000))!;
  t.diagnostic(`SIGSTOP → dependents told in ${toldAt - stoppedAt} ms (bound ${bound} ms)`);
  assert.ok(toldAt - stoppedAt <= bound, `told after ${toldAt - stoppedAt} ms, bound ${bound} ms`);
  await waitFor(async () => (await providersOf(consumer)).echo?.length === 0, 'the consumer to drop the hung echo');
  const view = (await getJson(`${reg.url}/services?name=echo`)).body.instances[0];
  assert.equal(view.state, 'down');
  assert.ok(view.consecutiveFailures >= 3);

  const resumedAt = Date.now();
  echo.child.kill('SIGCONT');
  await waitFor(() => addedAt(watcher, echo.url, resumedAt), 'the up patch', 15_000);
  await waitFor(async () => (await providersOf(consumer)).echo?.includes(echo.url), 'the consumer to get echo back');
  assert.equal((await getJson(`${consumer.url}/call/echo`)).body.url, echo.url);
});

test('a subscriber that never answers its patches delays nobody else', async (t) => {
  const reg = await setup(t, { NOTIFY_TIMEOUT_MS: '2000', NOTIFY_RETRIES: '3' });
  const hanging = await dependentStub(t, reg.url, ['echo'], { hangPatches: true });
  const watcher = await dependentStub(t, reg.url, ['echo']);
  const consumer = await startFixture('consumer', reg.url, ['echo']);
  t.after(() => consumer.stop());

  const echoes: Awaited<ReturnType<typeof startFixture>>[] = [];
  for (let i = 0; i < 2; i++) {
    const echo = await startFixture('echo', reg.url);
    t.after(() => echo.stop('SIGKILL'));
    echoes.push(echo);
    await waitFor(() => addedAt(watcher, echo.url, 0), `echo ${i} to be announced`);
  }
  assert.ok(hanging.patches.length >= 1, 'the hanging subscriber got (and sat on) its patch');

  // While the hanging subscriber holds patches open, a crash is still announced to the others in time.
  const killedAt = Date.now();
  echoes[0].child.kill('SIGKILL');
  const toldAt = (await waitFor(() => removedAt(watcher, echoes[0].url, killedAt), 'the down patch', 15_000))!;
  t.diagnostic(`with a hanging subscriber: SIGKILL → others told in ${toldAt - killedAt} ms`);
  assert.ok(toldAt - killedAt <= INTERVAL_MS + 1000, `told after ${toldAt - killedAt} ms`);
  await waitFor(async () => JSON.stringify((await providersOf(consumer)).echo) === JSON.stringify([echoes[1].url]), 'the consumer to drop the dead echo');

  // The registry itself stays responsive.
  const started = Date.now();
  assert.equal((await getJson(`${reg.url}/health`)).status, 200);
  assert.ok(Date.now() - started < 2000);
});
