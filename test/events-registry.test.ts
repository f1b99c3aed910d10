/**
 * The registry's instance events (registry/eventsPublisher.ts) and the log service's record of them
 * (logservice/registryEvents.ts): "when did X go down" answered by GET /logs?service=registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startFixture, startProcess, startRegistry, tempDir, waitFor } from './helpers.ts';
import { metricValue, startEventsService, subscriberViews } from './events-helpers.ts';

test('the registry publishes instance events; the log service stores them as lines of service registry', { timeout: 180_000 }, async (t) => {
  const registry = await startRegistry({ EVICT_AFTER_MS: '1500' });
  t.after(() => registry.stop());
  const events = await startEventsService(registry.url);
  t.after(() => events.stop());
  const log = await startProcess('cmd/logservice.ts', { env: { REGISTRY_URL: registry.url, DATA_DIR: tempDir('events-log-'), LOG_LEVEL: 'info' } });
  t.after(() => log.stop());
  const watcher = await startProcess('test/fixtures/eventsService.ts', { env: { NAME: 'watcher', SUBSCRIBE: 'instance.*', REGISTRY_URL: registry.url, LOG_LEVEL: 'info' } });
  t.after(() => watcher.stop());
  await waitFor(async () => {
    const views = await subscriberViews(events.url);
    return views.get('group:log')?.state === 'up' && views.get(`instance:${watcher.url}`)?.state === 'up';
  }, 'the log service and the watcher subscribed');

  const fixture = await startFixture('doomed', registry.url);
  const leaver = await startFixture('leaver', registry.url);
  await leaver.stop('SIGTERM');
  await fixture.stop('SIGKILL');

  const lines = (await waitFor(async () => {
    const { body } = await getJson(`${log.url}/logs?service=registry&q=${encodeURIComponent(fixture.url)}`);
    const entries = body.entries as { level: string; message: string; event: string; instanceId: string; time: string }[];
    return entries.some((e) => e.event === 'instance.evicted') ? entries : undefined;
  }, 'the down and evicted lines of the killed instance', 30_000))!;
  const down = lines.find((e) => e.event === 'instance.down')!;
  assert.ok(down, 'a down line');
  assert.equal(down.level, 'warn');
  assert.match(down.message, new RegExp(`^doomed at ${fixture.url.replace(/[.]/g, '\\.')} went down: `));
  assert.ok(lines.some((e) => e.event === 'instance.registered' && e.level === 'info'), 'the registration is a line too');
  assert.ok(Date.parse(down.time) > 0, 'the line carries when it went down');

  // What the events carry, as a subscriber gets them.
  const got = (await waitFor(async () => {
    const list = (await getJson(`${watcher.url}/received`)).body.events as { topic: string; payload: Record<string, string> }[];
    const mine = list.filter((e) => e.payload.serviceURL === fixture.url || e.payload.serviceURL === leaver.url);
    return mine.some((e) => e.topic === 'instance.evicted') && mine.some((e) => e.topic === 'instance.deregistered') ? mine : undefined;
  }, 'the watcher got the events'))!;
  const doomed = got.filter((e) => e.payload.serviceURL === fixture.url).map((e) => e.topic);
  assert.deepEqual(doomed, ['instance.registered', 'instance.down', 'instance.evicted']);
  const left = got.filter((e) => e.payload.serviceURL === leaver.url).map((e) => e.topic);
  // A stopping service closes its server as it deregisters, so a check may see it down first.
  assert.equal(left[0], 'instance.registered');
  assert.equal(left.at(-1), 'instance.deregistered');
  const downEvent = got.find((e) => e.topic === 'instance.down' && e.payload.serviceURL === fixture.url)!.payload;
  assert.equal(downEvent.serviceName, 'doomed');
  assert.ok(downEvent.instanceId && downEvent.reason, 'with the instance id and the reason');
  assert.equal((await getJson(`${log.url}/logs?service=registry&q=${encodeURIComponent(leaver.url)}`)).body.entries.filter((e: { event: string }) => e.event === 'instance.deregistered').length, 1);
});

test('with no events service the registry drops its instance events and counts them; registrations go on', { timeout: 60_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const fixture = await startFixture('alone', registry.url);
  t.after(() => fixture.stop());
  await waitFor(async () => (await metricValue(registry.url, 'registry_events_dropped_total{reason="absent"')) >= 1, 'the registration counted as dropped');
  assert.equal(await metricValue(registry.url, 'registry_events_buffered'), 0, 'nothing held');
  assert.equal(await metricValue(registry.url, 'registry_events_published_total'), 0);
});
