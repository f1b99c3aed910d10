/** A request id travelling across three services, found in the log service under that id. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startProcess, startRegistry, waitFor, type Proc } from './helpers.ts';
import { startLogService, trackedProcesses } from './fixtures/logs.ts';

const { procs } = trackedProcesses();

async function startTracer(name: string, next: string, registryUrl: string): Promise<Proc> {
  const proc = await startProcess('test/fixtures/tracer.ts', { env: { NAME: name, NEXT: next, REGISTRY_URL: registryUrl } });
  procs.push(proc);
  return proc;
}

test('one request id across three services, and every line of the request carries it', async () => {
  const registry = await startRegistry();
  procs.push(registry);
  const log = await startLogService({ REGISTRY_URL: registry.url });
  procs.push(log);
  const [front] = await Promise.all([
    startTracer('trace-front', 'trace-middle', registry.url),
    startTracer('trace-middle', 'trace-back', registry.url),
    startTracer('trace-back', '', registry.url),
  ]);
  await waitFor(async () => {
    const res = await getJson(`${front.url}/trace`);
    return res.status === 200 && res.body.chain.length === 3;
  }, 'the chain to be connected', 30_000, 200);

  const requestId = `trace-${Date.now()}`;
  const res = await getJson(`${front.url}/trace`, { headers: { 'x-request-id': requestId } });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.chain, ['trace-front', 'trace-middle', 'trace-back']);
  assert.equal(res.headers.get('x-request-id'), requestId);

  const expected = [
    ['trace-front', 'trace-front received the request'],
    ['trace-middle', 'trace-middle received the request'],
    ['trace-back', 'trace-back received the request'],
    ['trace-middle', 'trace-middle heard back from trace-back'],
    ['trace-front', 'trace-front heard back from trace-middle'],
  ];
  const entries = (await waitFor(async () => {
    const found = (await getJson(`${log.url}/logs?requestId=${requestId}`)).body.entries as any[];
    return found.length >= expected.length ? found : undefined;
  }, 'the request\'s lines in the log service', 20_000, 100))!;
  assert.equal(entries.length, expected.length, JSON.stringify(entries, null, 1));
  const seen = entries.map((e) => [e.service, e.message]);
  for (const line of expected) assert.ok(seen.some(([s, m]) => s === line[0] && m === line[1]), `missing ${line.join(': ')}`);
  assert.ok(entries.every((e) => e.requestId === requestId));

  // Nothing else from these services was logged without an id while serving this request.
  const around = (await getJson(`${log.url}/logs?service=trace-front,trace-middle,trace-back&q=${encodeURIComponent('heard back')}&limit=100`)).body.entries as any[];
  assert.ok(around.every((e) => typeof e.requestId === 'string' && e.requestId.length > 0), 'every line written inside a request has an id');
  // An id made up by the first service (no x-request-id sent) travels too.
  const fresh = await getJson(`${front.url}/trace`);
  const freshId = fresh.headers.get('x-request-id')!;
  assert.match(freshId, /^[0-9a-f-]{36}$/);
  await waitFor(async () => {
    const found = (await getJson(`${log.url}/logs?requestId=${freshId}`)).body.entries as any[];
    return new Set(found.map((e) => e.service)).size === 3;
  }, 'a generated id to be found in all three services', 20_000, 100);
});
