import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import winston from 'winston';
import { Registry } from './registry.ts';
import { Outbound } from './outbound.ts';
import { HealthChecker } from './healthChecker.ts';

const silent = winston.createLogger({ silent: true });

async function heartbeatServer(): Promise<{ url: string; hits: Map<string, number>; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, hits, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('every instance is checked about once per interval; forgotten ones and leases are not; lapsed leases go down', async (t) => {
  const server = await heartbeatServer();
  const registry = new Registry();
  const outbound = new Outbound();
  const checker = new HealthChecker(registry, outbound, { intervalMs: 100, timeoutMs: 500, failuresBeforeDown: 3, maxConcurrent: 8, evictAfterMs: 60_000 }, silent);
  t.after(async () => {
    checker.stop();
    outbound.destroy();
    await server.close();
  });
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const { record } = registry.register({ serviceName: 'echo', serviceURL: `${server.url}/${i}`, heartbeatURL: `${server.url}/${i}/heartbeat`, serviceUpdateURL: undefined, requiredServices: [] });
    checker.track(record.instanceId);
    ids.push(record.instanceId);
  }
  const lease = registry.register({ serviceName: 'worker', serviceURL: `${server.url}/lease`, requiredServices: [], heartbeatURL: undefined, serviceUpdateURL: undefined, ttlSeconds: 0.3 }).record;
  checker.track(lease.instanceId);
  registry.remove(ids[0]);
  checker.forget(ids[0]);
  checker.start();
  await new Promise((resolve) => setTimeout(resolve, 1050));
  // ~10 intervals: each live instance checked about 10 times (first check within the first interval).
  for (let i = 1; i < 20; i++) {
    const hits = server.hits.get(`/${i}/heartbeat`) ?? 0;
    assert.ok(hits >= 5 && hits <= 13, `instance ${i} checked ${hits} times in ~10 intervals`);
  }
  assert.equal(server.hits.get('/0/heartbeat') ?? 0, 0, 'a forgotten instance is not checked');
  assert.equal(lease.state, 'down', 'the lapsed lease is down');
  assert.ok(registry.list().filter((r) => r.serviceName === 'echo').every((r) => r.state === 'up' && r.lastCheckAt !== undefined));
});
