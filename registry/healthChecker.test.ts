import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import winston from 'winston';
import { Registry } from './registry.ts';
import { Outbound } from './outbound.ts';
import { HealthChecker, type HealthCheckOptions } from './healthChecker.ts';
import { ExpiryWatcher } from './expiryWatcher.ts';
import { waitFor } from '../test/helpers.ts';

const silent = winston.createLogger({ silent: true });

/** Answers every check and counts them per path; with a clock, also notes when (on that clock) each came. */
async function heartbeatServer(clock?: { now: number }): Promise<{ url: string; hits: Map<string, number>; times: Map<string, number[]>; status: { code: number }; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const times = new Map<string, number[]>();
  const status = { code: 200 };
  const server = http.createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    if (clock) times.set(req.url ?? '', [...(times.get(req.url ?? '') ?? []), clock.now]);
    res.writeHead(status.code).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, hits, times, status, close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
}

/**
 * A checker on a registry of its own, with a heartbeat server for its instances (checked every 1 s, down
 * after 3 failures, unless `options` say otherwise); on `clock` when one is given. Stopped after the test.
 */
async function checkerRig(t: TestContext, options: Partial<HealthCheckOptions> = {}, clock?: { now: number }) {
  const server = await heartbeatServer(clock);
  const registry = new Registry();
  const outbound = new Outbound();
  const checker = new HealthChecker(registry, outbound, { intervalMs: 1000, timeoutMs: 500, heartbeatFailures: 3, maxConcurrent: 8, ...options }, silent, {}, clock ? () => clock.now : undefined);
  t.after(async () => {
    checker.stop();
    outbound.destroy();
    await server.close();
  });
  return { server, registry, checker };
}

/** Drives a checker on a clock of our own in ticks, each tick's checks finished before the next. */
async function ticks(checker: HealthChecker, clock: { now: number }, count: number, tickMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    clock.now += tickMs;
    checker.checkDue();
    await checker.whenIdle();
  }
}

/** Counts the schedule's wakes (calls of checkDue from its timer). */
function countWakes(checker: HealthChecker): { count: number } {
  const wakes = { count: 0 };
  const checkDue = checker.checkDue.bind(checker);
  checker.checkDue = () => {
    wakes.count++;
    checkDue();
  };
  return wakes;
}

const heartbeat = (url: string, name = 'echo') => ({ serviceName: name, serviceURL: url, heartbeatURL: `${url}/heartbeat`, serviceUpdateURL: undefined, requiredServices: [] });

test('every instance is checked once per interval (a clock of our own, no sleeping); a deregistered one and a lease are not', async (t) => {
  const clock = { now: 1_000_000 };
  const intervalMs = 1000;
  const { server, registry, checker } = await checkerRig(t, { intervalMs }, clock);
  const ids = Array.from({ length: 20 }, (_, i) => registry.register(heartbeat(`${server.url}/${i}`), clock.now).record.instanceId);
  registry.register({ serviceName: 'worker', serviceURL: `${server.url}/lease`, requiredServices: [], heartbeatURL: undefined, serviceUpdateURL: undefined, ttlSeconds: 1 }, clock.now);
  registry.remove(ids[0]);
  // Ten intervals in ticks of 20 ms of our clock.
  await ticks(checker, clock, (10 * intervalMs) / 20, 20);
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
  const { server, registry, checker } = await checkerRig(t, { heartbeatFailures: 2 });
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
  const { server, registry, checker } = await checkerRig(t);
  const wakes = countWakes(checker);
  checker.start();
  // Nothing registered: a tick of 20 ms would have woken 25 times by now.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(wakes.count, 0, 'no wake while nothing is due');
  registry.register(heartbeat(`${server.url}/one`), Date.now());
  registry.register(heartbeat(`${server.url}/two`), Date.now());
  const checks = () => [...server.hits.values()].reduce((n, h) => n + h, 0);
  await waitFor(() => checks() >= 6, 'three checks of each instance', 10_000);
  // Each check its own wake at most (two may share one), where a fixed tick woke 50 times a second.
  assert.ok(wakes.count <= checks() + 1, `${wakes.count} wakes for ${checks()} checks`);
  // A peer closing our connection gets its instance checked at once, not a tick later.
  const before = checks();
  const started = performance.now();
  checker.checkSoon(registry.list()[0].instanceId);
  await waitFor(() => checks() > before, 'the urgent check');
  assert.ok(performance.now() - started < 200, `the urgent check came after ${(performance.now() - started).toFixed(0)} ms`);
});

test('checks made out of turn (a start-up, a takeover) do not stay one burst: the next turns spread over an interval', async (t) => {
  const clock = { now: 1_000_000 };
  const intervalMs = 1000;
  const { server, registry, checker } = await checkerRig(t, { intervalMs, maxConcurrent: 64 }, clock);
  const ids = Array.from({ length: 200 }, (_, i) => registry.register(heartbeat(`${server.url}/${i}`), clock.now).record.instanceId);
  for (const id of ids) checker.checkSoon(id);
  await ticks(checker, clock, (2 * intervalMs) / 10, 10);
  const first = ids.map((_, i) => server.times.get(`/${i}/heartbeat`)![0]);
  const second = ids.map((_, i) => server.times.get(`/${i}/heartbeat`)![1]);
  assert.ok(first.every((at) => at === first[0]), 'every out-of-turn check at the first tick');
  const gaps = second.map((at, i) => at - first[i]);
  assert.ok(Math.min(...gaps) >= intervalMs / 2, `the next turn no sooner than half an interval (${Math.min(...gaps)} ms)`);
  // On the usual ±5 % the 200 would come back within 100 ms of each other; spread over an interval, the
  // span is nearly the whole of it, and no tenth of the interval holds more than a fifth of them.
  assert.ok(Math.max(...gaps) - Math.min(...gaps) >= 0.8 * intervalMs, `the next turns span ${Math.max(...gaps) - Math.min(...gaps)} ms`);
  const perTenth = new Map<number, number>();
  for (const gap of gaps) perTenth.set(Math.floor(gap / 100), (perTenth.get(Math.floor(gap / 100)) ?? 0) + 1);
  assert.ok(Math.max(...perTenth.values()) <= 40, `at most ${Math.max(...perTenth.values())} of 200 in one tenth of the interval`);
});

test("a replica's schedule holds only what it owns; what it adopts is checked at once and stays on it", async (t) => {
  const clock = { now: 1_000_000 };
  const mine = new Set<string>();
  const { server, registry, checker } = await checkerRig(t, { owns: (id) => mine.has(id) }, clock);
  const ids = Array.from({ length: 40 }, (_, i) => {
    const id = `instance-${i}`;
    if (i % 2 === 0) mine.add(id);
    return registry.register({ ...heartbeat(`${server.url}/${i}`), instanceId: id }, clock.now).record.instanceId;
  });
  assert.equal(checker.scheduled, 20, 'the other replica’s 20 are not on this schedule');
  await ticks(checker, clock, 150, 20);
  const hits = (i: number) => server.hits.get(`/${i}/heartbeat`) ?? 0;
  assert.ok(ids.every((_, i) => (i % 2 === 0 ? hits(i) >= 2 : hits(i) === 0)), 'its own checked, the others not');
  // The other replica is gone: this one adopts its instances (as Takeover.rebalance does) and checks them at once.
  for (const id of ids) mine.add(id);
  for (const [i, id] of ids.entries()) if (i % 2 === 1) checker.checkSoon(id);
  await ticks(checker, clock, 1, 20);
  assert.ok(ids.every((_, i) => i % 2 === 0 || hits(i) === 1), 'each adopted instance checked at the next tick');
  assert.equal(checker.scheduled, 40);
  await ticks(checker, clock, 100, 20);
  assert.ok(ids.every((_, i) => hits(i) >= 2), 'and on the schedule from then on');
  // Handed back: off the schedule at its next turn.
  for (const [i, id] of ids.entries()) if (i % 2 === 1) mine.delete(id);
  await ticks(checker, clock, 100, 20);
  assert.equal(checker.scheduled, 20);
});

test('checks leave in batches of about a hundred, each within half a tick of its turn, and every instance is checked once per interval', async (t) => {
  const intervalMs = 1000;
  const { server, registry, checker } = await checkerRig(t, { intervalMs, maxConcurrent: 128 });
  const wakes = countWakes(checker);
  for (let i = 0; i < 500; i++) registry.register(heartbeat(`${server.url}/${i}`), Date.now());
  checker.start();
  const checks = () => [...server.hits.values()].reduce((n, h) => n + h, 0);
  // The first interval sets the tick (500 a second: 200 ms); count over the three after it.
  await waitFor(() => checks() >= 500, 'the first interval', 10_000);
  const [wakesBefore, checksBefore, hitsBefore] = [wakes.count, checks(), new Map(server.hits)];
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 3 * intervalMs));
  const seconds = (performance.now() - started) / 1000;
  const [wokeFor, checked] = [wakes.count - wakesBefore, checks() - checksBefore];
  // 20 a wake (the old tick) would be 25 wakes a second here.
  t.diagnostic(`${wokeFor} wakes for ${checked} checks in ${seconds.toFixed(1)} s`);
  assert.ok(wokeFor <= checked / 50, `${wokeFor} wakes for ${checked} checks in ${seconds.toFixed(1)} s`);
  // Half a tick early or late at most, on ±5 % jitter: 3 intervals hold 2 to 4 checks of each instance.
  const counts = [...server.hits].map(([path, n]) => n - (hitsBefore.get(path) ?? 0));
  assert.equal(counts.length, 500);
  assert.ok(counts.every((n) => n >= 2 && n <= 4), `checks per instance in 3 intervals: ${Math.min(...counts)} to ${Math.max(...counts)}`);
});
