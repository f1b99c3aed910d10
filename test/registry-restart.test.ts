/**
 * Registry restarts on a fixed port: with its DATA_DIR (registrations kept and checked again at
 * once) and with an empty one (services notice they are no longer checked and register again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, getJson, providersOf, startFixture, startRegistry, tempDir, waitFor } from './helpers.ts';

async function instances(registryUrl: string): Promise<any[]> {
  return (await getJson(`${registryUrl}/services`)).body.instances;
}

test('a restarted registry keeps its registrations and checks them again right away', async (t) => {
  const port = String(await freePort());
  const dataDir = tempDir('registry-restart-');
  let reg = await startRegistry({ PORT: port }, dataDir);
  t.after(() => reg.stop());
  const echo = await startFixture('echo', reg.url);
  t.after(() => echo.stop());
  const doomed = await startFixture('doomed', reg.url);
  t.after(() => doomed.stop('SIGKILL'));
  const consumer = await startFixture('consumer', reg.url, ['echo']);
  t.after(() => consumer.stop());
  await waitFor(async () => (await providersOf(consumer)).echo?.includes(echo.url), 'the consumer to learn of echo');
  const before = await instances(reg.url);
  assert.equal(before.length, 3);

  assert.equal(await reg.stop('SIGTERM'), 0);
  // While the registry is away, one service dies for good.
  doomed.child.kill('SIGKILL');
  await doomed.exited;

  const restartedAt = Date.now();
  reg = await startRegistry({ PORT: port }, dataDir);
  assert.match(reg.output(), /restored 3 registration\(s\)/);
  const after = await instances(reg.url);
  const key = (i: any) => `${i.instanceId} ${i.serviceName} ${i.serviceURL} ${i.registeredAt}`;
  assert.deepEqual(after.map(key).sort(), before.map(key).sort(), 'the same registrations, not new ones');

  // Checked again at start-up: the live ones answer, the dead one is down within a few intervals.
  await waitFor(
    async () => (await instances(reg.url)).every((i) => i.lastCheckAt && Date.parse(i.lastCheckAt) >= restartedAt - 50),
    'every instance to be checked after the restart',
  );
  const checked = (await waitFor(async () => {
    const list = await instances(reg.url);
    return list.find((i) => i.serviceName === 'doomed')?.state === 'down' ? list : undefined;
  }, 'the dead instance to be down'))!;
  assert.equal(checked.find((i: any) => i.serviceName === 'echo').state, 'up');
  assert.deepEqual((await providersOf(consumer)).echo, [echo.url]);
  assert.equal((await getJson(`${consumer.url}/call/echo`)).body.url, echo.url);
});

test('after the registry loses its data, services (heartbeat and lease) register again by themselves', async (t) => {
  const port = String(await freePort());
  let reg = await startRegistry({ PORT: port });
  t.after(() => reg.stop());
  const echo = await startFixture('echo', reg.url);
  t.after(() => echo.stop());
  const worker = await startFixture('worker', reg.url, [], { LEASE_TTL_SECONDS: '1' });
  t.after(() => worker.stop());
  const consumer = await startFixture('consumer', reg.url, ['echo', 'worker']);
  t.after(() => consumer.stop());
  await waitFor(async () => {
    const providers = await providersOf(consumer);
    return providers.echo?.length === 1 && providers.worker?.length === 1;
  }, 'the consumer to learn of echo and worker');

  await reg.stop('SIGKILL');
  reg = await startRegistry({ PORT: port }, tempDir('registry-empty-'));
  const restartedAt = Date.now();
  assert.equal((await instances(reg.url)).length, 0, 'the new registry starts empty');

  const list = (await waitFor(async () => {
    const now = await instances(reg.url);
    return now.length === 3 && now.every((i) => i.state === 'up') ? now : undefined;
  }, 'all three services to register again', 20_000))!;
  t.diagnostic(`all services registered again ${Date.now() - restartedAt} ms after the empty restart`);
  assert.deepEqual(list.map((i: any) => i.serviceName).sort(), ['consumer', 'echo', 'worker']);
  await waitFor(async () => {
    const providers = await providersOf(consumer);
    return providers.echo?.[0] === echo.url && providers.worker?.length === 1;
  }, 'the consumer to have its providers again');
  assert.match(echo.output(), /registering again|registered again/);
  assert.match(worker.output(), /does not know our lease/);
  assert.equal((await getJson(`${consumer.url}/call/echo`)).body.url, echo.url);
});
