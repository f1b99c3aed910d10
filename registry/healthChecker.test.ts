import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import winston from 'winston';
import { Registry } from './registry.ts';
import { Outbound } from './outbound.ts';
import { HealthChecker } from './healthChecker.ts';
import { ExpiryWatcher } from './expiryWatcher.ts';
import { waitFor } from '../test/helpers.ts';

const silent = winston.createLogger({ silent: true });

async function heartbeatServer(): Promise<{ url: string; hits: Map<string, number>; status: { code: number }; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const status = { code: 200 };
  const server = http.createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    res.writeHead(status.code).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, hits, status, close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
}

const heartbeat = (url: string, name = 'echo') => ({ serviceName: name, serviceURL: url, heartbeatURL: `${url}/heartbeat`, serviceUpdateURL: undefined, requiredServices: [] });

test('every instance is checked once per interval (a clock of our own, no sleeping); a deregistered one and a lease are not', async (t) => {
  const server = await heartbeatServer();
  const registry = new Registry();
  const outbound = new Outbound();
  let now = 1_000_000;
  const intervalMs = 1000;
  const checker = new HealthChecker(registry, outbound, { intervalMs, timeoutMs: 500, heartbeatFailures: 3, maxConcurrent: 8 }, silent, {}, () => now);
  t.after(async () => {
    outbound.destroy();
    await server.close();
  });
  const ids = Array.from({ length: 20 }, (_, i) => registry.register(heartbeat(`${server.url}/${i}`), now).record.instanceId);
  registry.register({ serviceName: 'worker', serviceURL: `${server.url}/lease`, requiredServices: [], heartbeatURL: undefined, serviceUpdateURL: undefined, ttlSeconds: 1 }, now);
  registry.remove(ids[0]);
  // Ten intervals in ticks of 20 ms of our clock, each tick's checks finished before the next.
  for (let tick = 0; tick < (10 * intervalMs) / 20; tick++) {
    now += 20;
    checker.checkDue();
    await checker.whenIdle();
  }
  // The first check comes within the first interval, then one per interval (±5 % jitter).
  for (let i = 1; i < 20; i++) {
    const hits = server.hits.get(`/${i}/heartbeat`) ?? 0;
    assert.ok(hits >= 9 && hits <= 11, `instance ${i} checked ${hits} times in 10 intervals`);
  }
  assert.equal(server.hits.get('/0/heartbeat') ?? 0, 0, 'a deregistered instance is not checked');
  assert.equal(server.hits.get('/lease/heartbeat') ?? 0, 0, 'a lease is not checked');
  assert.ok(registry.list().filter((r) => r.serviceName === 'echo').every((r) => r.state === 'up' && r.lastCheckAt !== undefined && r.lastCheckAt > 1_000_000));
});

test('bad statuses go through the policy and the registry: down on the threshold, up on the next answer', async (t) => {
  const server = await heartbeatServer();
  const registry = new Registry();
  const outbound = new Outbound();
  const checker = new HealthChecker(registry, outbound, { intervalMs: 1000, timeoutMs: 500, heartbeatFailures: 2, maxConcurrent: 8 }, silent);
  t.after(async () => {
    outbound.destroy();
    await server.close();
  });
  const { record } = registry.register(heartbeat(`${server.url}/sick`, 'sick'));
  const changes: string[] = [];
  registry.on('change', (change) => changes.push(change.type));
  server.status.code = 503;
  await checker.sweep();
  assert.equal(record.state, 'up');
  assert.equal(record.consecutiveFailures, 1);
  assert.match(record.lastError ?? '', /503/);
  await checker.sweep();
  assert.equal(record.state, 'down');
  server.status.code = 200;
  await checker.sweep();
  assert.equal(record.state, 'up');
  assert.equal(record.consecutiveFailures, 0);
  assert.equal(record.lastError, undefined);
  assert.deepEqual(changes, ['down', 'up']);
});

test('a lapsed lease is down, and an instance down for evictAfterMs is evicted (a clock of our own)', () => {
  const registry = new Registry();
  let now = 5_000;
  const watcher = new ExpiryWatcher(registry, { intervalMs: 1000, evictAfterMs: 60_000 }, silent, () => now);
  const { record } = registry.register({ serviceName: 'worker', serviceURL: 'http://127.0.0.1:9/w', requiredServices: [], heartbeatURL: undefined, serviceUpdateURL: undefined, ttlSeconds: 2 }, now);
  now += 1999;
  watcher.scan();
  assert.equal(record.state, 'up', 'not before the lease lapses');
  now += 2;
  watcher.scan();
  assert.equal(record.state, 'down');
  // The reason is data, not prose frozen at the moment it was written ("1 ms ago").
  assert.deepEqual(record.downReason, { code: 'lease_expired', message: 'the lease ran out at 1970-01-01T00:00:07.000Z without a renewal' });
  assert.equal(record.downSince, now);
  now += 59_999;
  watcher.scan();
  assert.equal(registry.size, 1, 'not evicted before evictAfterMs');
  now += 1;
  watcher.scan();
  assert.equal(registry.size, 0);
});

test('the schedule wakes only for checks that are due: none while nothing is registered, about one per check for a few instances', async (t) => {
  const server = await heartbeatServer();
  const registry = new Registry();
  const outbound = new Outbound();
  const checker = new HealthChecker(registry, outbound, { intervalMs: 1000, timeoutMs: 500, heartbeatFailures: 3, maxConcurrent: 8 }, silent);
  let wakes = 0;
  const checkDue = checker.checkDue.bind(checker);
  checker.checkDue = () => {
    wakes++;
    checkDue();
  };
  t.after(async () => {
    checker.stop();
    outbound.destroy();
    await server.close();
  });
  checker.start();
  // Nothing registered: a tick of 20 ms would have woken 25 times by now.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(wakes, 0, 'no wake while nothing is due');
  registry.register(heartbeat(`${server.url}/one`), Date.now());
  registry.register(heartbeat(`${server.url}/two`), Date.now());
  const checks = () => [...server.hits.values()].reduce((n, h) => n + h, 0);
  await waitFor(() => checks() >= 6, 'three checks of each instance', 10_000);
  // Each check its own wake at most (two may share one), where a fixed tick woke 50 times a second.
  assert.ok(wakes <= checks() + 1, `${wakes} wakes for ${checks()} checks`);
  // A peer closing our connection gets its instance checked at once, not a tick later.
  const before = checks();
  const started = performance.now();
  checker.checkSoon(registry.list()[0].instanceId);
  await waitFor(() => checks() > before, 'the urgent check');
  assert.ok(performance.now() - started < 200, `the urgent check came after ${(performance.now() - started).toFixed(0)} ms`);
});
