/**
 * The registry's event stream under many watchers, some of which never read: the slow ones are cut
 * off (the one that reads late is told why), the registry's queued bytes stay bounded and it keeps
 * answering, the watchers that read see every registration and every down and up, and routine
 * checks arrive as small summaries at most once a second instead of one entry per check.
 * A follower given replicas follows the one that answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, getJson, startRegistry, waitFor } from './helpers.ts';
import { RawEventReader } from './rawEventReader.ts';
import { metric } from './fixtures/logs.ts';
import { RegistryClient } from '../registry/client.ts';
import { RegistryFollower } from '../registry/follower.ts';
import type { InstanceView, RegistryEvent } from '../registry/protocol.ts';

/** A heartbeat endpoint that can refuse connections (down) and come back on the same port (up). */
async function flapper(): Promise<{ url: string; down(): Promise<void>; up(): Promise<void> }> {
  const port = await freePort();
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  const up = () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await up();
  return {
    url: `http://127.0.0.1:${port}`,
    up,
    down: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return closed;
    },
  };
}

/** One server answering the heartbeats of many instances (/i/<n>/heartbeat). */
async function heartbeats(): Promise<{ url: string; close(): void }> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function register(registryUrl: string, body: unknown): Promise<void> {
  const { status, body: answer } = await getJson(`${registryUrl}/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(status, 200, JSON.stringify(answer));
}

/** A watcher through RegistryClient.watch (which resumes after a cut-off), keeping the picture the events paint. */
function watcher(registryUrl: string, signal: AbortSignal) {
  const instances = new Map<string, Pick<InstanceView, 'instanceId' | 'serviceName' | 'state'>>();
  const changes: { type: string; instanceId: string }[] = [];
  const summaries: { at: number; event: Extract<RegistryEvent, { type: 'checked' }> }[] = [];
  const done = new RegistryClient({ registryUrl }).watch(
    (event) => {
      if (event.type === 'snapshot') {
        instances.clear();
        for (const i of event.instances) instances.set(i.instanceId, i);
      } else if (event.type === 'checked') {
        summaries.push({ at: Date.now(), event });
      } else {
        changes.push({ type: event.type, instanceId: event.instance.instanceId });
        if (event.type === 'deregistered' || event.type === 'evicted') instances.delete(event.instance.instanceId);
        else instances.set(event.instance.instanceId, event.instance);
      }
    },
    signal,
  );
  return { instances, changes, summaries, done };
}

test('slow watchers are cut off, the registry stays responsive, and readers see every change', async (t) => {
  // A long check timeout: on a busy machine a slow answer must not turn routine checks into failures.
  const registry = await startRegistry({ HEARTBEAT_INTERVAL_MS: '500', HEARTBEAT_TIMEOUT_MS: '5000', LOG_LEVEL: 'info' });
  t.after(() => registry.stop());
  const checked = await heartbeats();
  t.after(() => checked.close());
  const flap = await flapper();
  t.after(() => flap.down().catch(() => {}));

  // 200 instances checked twice a second, and one that will go down and come back.
  await Promise.all(
    Array.from({ length: 50 }, async (_, lane) => {
      for (let i = lane; i < 200; i += 50) {
        await register(registry.url, { serviceName: `checked-${i % 10}`, serviceURL: `${checked.url}/i/${i}`, heartbeatURL: `${checked.url}/i/${i}/heartbeat` });
      }
    }),
  );
  await register(registry.url, { serviceName: 'flapper', serviceURL: flap.url, heartbeatURL: `${flap.url}/heartbeat` });
  const flapperId = (await getJson(`${registry.url}/services?name=flapper`)).body.instances[0].instanceId as string;

  const abort = new AbortController();
  t.after(() => abort.abort());
  const readers = [watcher(registry.url, abort.signal), watcher(registry.url, abort.signal)];
  const stream = `${registry.url}/services/stream`;
  const neverRead = Array.from({ length: 3 }, () => new RawEventReader(stream, { reading: false }));
  const readsLate = new RawEventReader(stream, { reading: false });
  t.after(() => [...neverRead, readsLate].forEach((r) => r.close()));
  await waitFor(async () => (await metric(registry.url, 'registry_stream_clients')) === 6, 'six watchers');
  await waitFor(() => readers.every((r) => r.instances.size === 201), 'the snapshots');

  // Routine checks: summaries at most once a second, each small: counts, and only the instances whose
  // failures changed (none, unless this machine is so busy that checks fail), not one entry per check.
  const window = Date.now();
  await waitFor(() => readers.every((r) => r.summaries.filter((s) => s.at >= window).length >= 3), 'three summaries', 20_000);
  for (const reader of readers) {
    const recent = reader.summaries.filter((s) => s.at >= window);
    const listed = recent.reduce((n, s) => n + s.event.instances.length, 0);
    const checks = recent.reduce((n, s) => n + s.event.checks, 0);
    assert.ok(listed <= checks / 10, `${listed} instances listed for ${checks} checks`);
    assert.ok(recent.every((s) => s.event.checks > 0 && s.event.up + s.event.down === 201 && s.event.instances.length <= 100));
    const spanS = (recent.at(-1)!.at - recent[0].at) / 1000;
    assert.ok(recent.length <= Math.floor(spanS) + 2, `${recent.length} summaries in ${spanS} s`);
  }

  // A flood of registrations (leases: no checks; 24 kB of metadata each) until the watchers that don't read are past their cap.
  const metadata = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`note${i}`, 'x'.repeat(1000)]));
  let registered = 0;
  let maxQueued = 0;
  const listingMs: number[] = [];
  let flooding = true;
  const probe = (async () => {
    while (flooding) {
      const started = Date.now();
      const { status } = await getJson(`${registry.url}/services?name=flapper`);
      assert.equal(status, 200);
      listingMs.push(Date.now() - started);
      maxQueued = Math.max(maxQueued, await metric(registry.url, 'registry_stream_queued_bytes'));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  while ((await metric(registry.url, 'registry_stream_disconnects_total')) < 4) {
    assert.ok(registered < 5000, `the watchers that never read were not cut off after ${registered} registrations`);
    await Promise.all(
      Array.from({ length: 16 }, async (_, lane) => {
        for (let k = lane; k < 100; k += 16) {
          const n = registered + k;
          await register(registry.url, { serviceName: `leased-${n % 20}`, serviceURL: `http://127.0.0.1:9/leased/${n}`, ttlSeconds: 3600, metadata });
        }
      }),
    );
    registered += 100;
  }
  flooding = false;
  await probe;

  // The late reader reads what was queued, ending in the reason it was cut off.
  readsLate.read();
  await waitFor(() => readsLate.ended, 'the late reader to reach the end of its stream');
  assert.equal(readsLate.events.at(-1)?.event, 'disconnect');
  assert.equal(JSON.parse(readsLate.events.at(-1)!.data).reason, 'slow_reader');
  assert.equal(readsLate.events[0].event, 'snapshot');

  // Only the readers are left (they may have been cut off too while this process was busy, and resumed).
  await waitFor(async () => (await metric(registry.url, 'registry_stream_clients')) === 2, 'only the two readers to be left');
  const total = 201 + registered;
  await waitFor(() => readers.every((r) => r.instances.size === total), `every reader to know all ${total} instances`, 30_000);
  const listing = await getJson(`${registry.url}/services`);
  assert.equal(listing.body.instances.length, total);
  assert.ok(Math.max(...listingMs) < 2000, `GET /services took up to ${Math.max(...listingMs)} ms during the flood`);
  // Each watcher may hold up to the cap (1 MiB) beyond its snapshot; nothing grows without bound.
  assert.ok(maxQueued <= 6 * 1.5 * 1024 * 1024, `${maxQueued} bytes queued`);

  // Every down and up reaches every reader, once and in order.
  for (let round = 0; round < 2; round++) {
    await flap.down();
    await waitFor(() => readers.every((r) => r.changes.filter((c) => c.instanceId === flapperId).length === 2 * round + 1), `down #${round + 1} at every reader`);
    await flap.up();
    await waitFor(() => readers.every((r) => r.changes.filter((c) => c.instanceId === flapperId).length === 2 * round + 2), `up #${round + 1} at every reader`);
  }
  for (const reader of readers) {
    assert.deepEqual(
      reader.changes.filter((c) => c.instanceId === flapperId).map((c) => c.type),
      ['down', 'up', 'down', 'up'],
    );
    assert.equal(reader.instances.get(flapperId)?.state, 'up');
  }
  // The sockets of the watchers that never read are destroyed a while (10 s) after their cut-off.
  await waitFor(async () => (await metric(registry.url, 'registry_stream_queued_bytes')) < 256 * 1024, 'the cut-off sockets to be let go', 30_000);
  abort.abort();
  await Promise.all(readers.map((r) => r.done));
});

test('a follower of replicas a, b follows b while a does not answer, and sees each registration as it happens', async (t) => {
  const registry = await startRegistry({ LOG_LEVEL: 'info' });
  t.after(() => registry.stop());
  const flap = await flapper();
  t.after(() => flap.down().catch(() => {}));
  // Nothing listens on the first address: the stream comes from the second.
  const client = new RegistryClient({ registryUrl: `http://127.0.0.1:${await freePort()},${registry.url}` });
  const instances = new Map<string, InstanceView>();
  const warnings: string[] = [];
  const follower = new RegistryFollower(
    client,
    {
      reconcile: (list) => {
        instances.clear();
        for (const i of list) instances.set(i.instanceId, i);
      },
      sync: (i) => instances.set(i.instanceId, i),
      remove: (i) => instances.delete(i.instanceId),
    },
    { warn: (text) => warnings.push(text), error: (text) => warnings.push(text) },
  );
  follower.start();
  t.after(() => follower.stop());
  await waitFor(() => follower.snapshots === 1, 'the snapshot');
  assert.equal(client.registryUrl, registry.url);

  await register(registry.url, { serviceName: 'flapper', serviceURL: flap.url, heartbeatURL: `${flap.url}/heartbeat` });
  await waitFor(() => [...instances.values()].some((i) => i.serviceName === 'flapper' && i.state === 'up'), 'the registration, up');
  const [id] = [...instances.keys()];
  await fetch(`${registry.url}/services/${id}`, { method: 'DELETE' });
  await waitFor(() => instances.size === 0, 'the deregistration');
  assert.equal(follower.snapshots, 1, 'one stream throughout');
  assert.deepEqual(warnings, []);
});
