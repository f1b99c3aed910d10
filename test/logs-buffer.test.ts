/**
 * The log shipper when the log service is not there: one that starts after the client, one that
 * restarts while the client is logging. Every line arrives exactly once, up to the buffer bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startRegistry, waitFor, type Proc } from './helpers.ts';
import { countBy, startLogService, storedLines, tagged, trackedProcesses } from './fixtures/logs.ts';
import type { LogEntry } from '../logservice/protocol.ts';

const { procs, startWriter } = trackedProcesses();

async function shipper(proc: Proc) {
  return (await getJson(`${proc.url}/shipper`)).body as { shipped: number; dropped: number; buffered: number; posts: number; retries: number };
}

/** Each i in [0, n) exactly once. */
function assertExactlyOnce(lines: LogEntry[], n: number, what: string): void {
  const counts = countBy(lines, (e) => e.i as number);
  const twice = [...counts].filter(([, c]) => c > 1).map(([i]) => i);
  assert.deepEqual(twice, [], `${what}: lines stored twice`);
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !counts.has(i));
  assert.deepEqual(missing.slice(0, 20), [], `${what}: ${missing.length} lines missing`);
  assert.equal(lines.length, n, what);
}

test('a log service that starts after its clients gets their buffered lines, up to the buffer bound', async () => {
  const registry = await startRegistry();
  procs.push(registry);
  const roomy = await startWriter('early-roomy', registry.url, { EMIT_AT_START: '3000', EMIT_TAG: 'early' });
  const tight = await startWriter('early-tight', registry.url, { EMIT_AT_START: '3000', EMIT_TAG: 'early', LOG_SHIP_BUFFER_LINES: '1000' });
  await waitFor(async () => (await shipper(roomy)).buffered >= 3000, 'the roomy writer to buffer its lines');
  await waitFor(async () => (await shipper(tight)).dropped > 0, 'the tight writer to fill its buffer');
  assert.equal((await shipper(tight)).buffered, 1000);

  const log = await startLogService({ REGISTRY_URL: registry.url });
  procs.push(log);

  const roomyLines = (await waitFor(() => {
    const found = tagged(log.dataDir, 'early').filter((e) => e.service === 'early-roomy');
    return found.length >= 3000 ? found : undefined;
  }, 'the roomy writer\'s 3000 lines', 30_000, 200))!;
  assertExactlyOnce(roomyLines, 3000, 'roomy writer');
  await waitFor(async () => (await shipper(roomy)).buffered === 0, 'the roomy writer to drain');

  await waitFor(async () => (await shipper(tight)).buffered === 0, 'the tight writer to drain', 30_000);
  const tightState = await shipper(tight);
  const tightLines = tagged(log.dataDir, 'early').filter((e) => e.service === 'early-tight');
  // The buffer keeps the oldest lines: the first k lines (a few slots went to start-up lines), each once.
  const k = tightLines.length;
  assert.ok(k >= 980 && k <= 1000, `${k} of the tight writer's lines arrived`);
  assertExactlyOnce(tightLines, k, 'tight writer');
  assert.ok(tightState.dropped >= 3000 - k, `the dropped lines are counted (${tightState.dropped})`);
  const allTight = storedLines(log.dataDir).filter((e) => e.service === 'early-tight');
  assert.ok(allTight.length >= 1000, 'the whole buffer arrived');
  // The count is a metric too.
  const metrics = await (await fetch(`${tight.url}/metrics`)).text();
  assert.match(metrics, new RegExp(`log_shipper_dropped_lines\\{[^}]*\\} ${tightState.dropped}`));
});

test('a log service that restarts while a client is logging: every line arrives exactly once', async () => {
  const registry = await startRegistry();
  procs.push(registry);
  const first = await startLogService({ REGISTRY_URL: registry.url });
  procs.push(first);
  // A roomy buffer: this test is about the restart, not the bound (tested above).
  const writer = await startWriter('steady', registry.url, { LOG_SHIP_BUFFER_LINES: '200000' });
  await waitFor(async () => (await getJson(`${writer.url}/health`)).body.providers?.log?.length > 0, 'the writer to learn of the log service', 30_000);

  const total = 12_000;
  // About 2,500 lines/s for ~5 s, so the restart lands in the middle.
  const emitting = getJson(`${writer.url}/emit?count=${total}&tag=steady&batch=50&delayMs=20`, { method: 'POST' });
  await waitFor(() => tagged(first.dataDir, 'steady').length >= 1000, 'lines to reach the first log service', 30_000, 100);
  assert.equal(await first.stop('SIGTERM'), 0, first.output());
  const onDiskAtStop = tagged(first.dataDir, 'steady').length;
  assert.ok(onDiskAtStop < total, 'stopped while the writer was still logging');

  const second = await startLogService({ REGISTRY_URL: registry.url }, first.dataDir);
  procs.push(second);
  assert.equal((await emitting).status, 200);
  await waitFor(async () => (await shipper(writer)).buffered === 0, 'the writer to drain', 60_000, 200);
  const lines = tagged(first.dataDir, 'steady');
  assertExactlyOnce(lines, total, 'across the restart');
  const state = await shipper(writer);
  assert.equal(state.dropped, 0);
  assert.ok(state.retries > 0 || onDiskAtStop > 0, 'the restart was noticed');
  // Lines from both runs are found by one query, old ones from the files.
  const found = await getJson(`${second.url}/logs?service=steady&q=steady 0&limit=5`);
  assert.ok(found.body.entries.some((e: any) => e.message === 'steady 0'));
});
