/** The log shipper in a real service: batching, and the final flush when the service is stopped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startRegistry, waitFor, type Proc } from './helpers.ts';
import { countBy, metric, startLogService, storedLines, tagged, trackedProcesses } from './fixtures/logs.ts';

const { procs, startWriter } = trackedProcesses();

/** Waits until the service's provider table lists a log service. */
async function knowsLogService(proc: Proc): Promise<void> {
  await waitFor(async () => (await getJson(`${proc.url}/health`)).body.providers?.log?.length > 0, 'the writer to learn of the log service', 30_000);
}

test('many lines arrive in few requests, each once, with the service name and level', async () => {
  const registry = await startRegistry();
  procs.push(registry);
  const log = await startLogService({ REGISTRY_URL: registry.url });
  procs.push(log);
  const writer = await startWriter('batcher', registry.url);
  await knowsLogService(writer);
  const postsBefore = await metric(log.url, 'log_requests_total');

  const emitted = await getJson(`${writer.url}/emit?count=5000&tag=batched&batch=500`, { method: 'POST' });
  assert.equal(emitted.status, 200);
  const lines = (await waitFor(() => {
    const found = tagged(log.dataDir, 'batched');
    return found.length >= 5000 ? found : undefined;
  }, '5000 lines on disk', 30_000, 200))!;

  const posts = (await metric(log.url, 'log_requests_total')) - postsBefore;
  assert.ok(posts <= 40, `5000 lines took ${posts} POSTs`);
  assert.equal(lines.length, 5000);
  assert.ok([...countBy(lines, (e) => e.i as number).values()].every((n) => n === 1), 'each line once');
  assert.equal(new Set(lines.map((e) => e.i)).size, 5000);
  assert.ok(lines.every((e) => e.service === 'batcher' && e.level === 'info' && e.message === `batched ${e.i}`));
  // Written inside the POST /emit request: every line carries that request's id.
  const ids = new Set(lines.map((e) => e.requestId));
  assert.equal(ids.size, 1);
  assert.equal([...ids][0], emitted.headers.get('x-request-id'));
  const shipper = (await getJson(`${writer.url}/shipper`)).body;
  assert.equal(shipper.dropped, 0);
  assert.ok(shipper.posts <= 40, `the writer made ${shipper.posts} POSTs`);
});

test('SIGTERM: lines logged just before it are shipped before the service exits', async () => {
  const registry = await startRegistry();
  procs.push(registry);
  const log = await startLogService({ REGISTRY_URL: registry.url });
  procs.push(log);
  // A long batch interval: nothing would be sent on time, only the final flush sends it.
  const writer = await startWriter('quitter', registry.url, { LOG_SHIP_INTERVAL_MS: '60000', LOG_SHIP_BATCH_LINES: '100000' });
  await knowsLogService(writer);
  assert.equal((await getJson(`${writer.url}/emit?count=3000&tag=last-words`, { method: 'POST' })).status, 200);
  assert.equal(await writer.stop('SIGTERM'), 0, writer.output());

  const lines = (await waitFor(() => {
    const found = tagged(log.dataDir, 'last-words');
    return found.length >= 3000 ? found : undefined;
  }, '3000 lines on disk', 20_000, 200))!;
  assert.equal(lines.length, 3000);
  assert.equal(new Set(lines.map((e) => e.i)).size, 3000);
  const shutdown = storedLines(log.dataDir).filter((e) => e.service === 'quitter').map((e) => e.message);
  assert.ok(shutdown.includes('SIGTERM: shutting down'), 'even the shutdown lines are shipped');
  assert.ok(shutdown.includes('deregistered'));
});
