/** A request refused with a 4xx leaves one warn line with its reason in the log service, under its request id. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startRegistry, tempDir, waitFor } from './helpers.ts';
import { startLogService, trackedProcesses } from './fixtures/logs.ts';
import { startGrades } from './fixtures/grades.ts';
import { waitForProviders } from './fixtures/pipeline.ts';

const { procs } = trackedProcesses();

test('an invalid grade is a 400 and one warn line saying why, with method, path, status, code and request id', async () => {
  const registry = await startRegistry();
  procs.push(registry);
  const log = await startLogService({ REGISTRY_URL: registry.url });
  procs.push(log);
  const grades = await startGrades(registry.url, tempDir('grades-'));
  procs.push(grades);
  await waitForProviders(grades, 'log');

  const requestId = `refused-${Date.now()}`;
  const res = await fetch(`${grades.url}/students/1/grades`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ title: 'Quiz', type: 'Quiz', score: 150 }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 400);
  const answer = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(answer.error.code, 'invalid_grade');

  const entries = (await waitFor(async () => {
    const found = (await getJson(`${log.url}/logs?service=grades&level=warn&requestId=${requestId}`)).body.entries as any[];
    return found.length > 0 ? found : undefined;
  }, 'the refusal in the log service', 20_000, 100))!;
  assert.equal(entries.length, 1, JSON.stringify(entries));
  const [line] = entries;
  assert.equal(line.level, 'warn');
  assert.equal(line.requestId, requestId);
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/students/1/grades');
  assert.equal(line.status, 400);
  assert.equal(line.code, 'invalid_grade');
  assert.ok(line.message.includes(answer.error.message), `the line gives the reason: ${line.message}`);
  assert.doesNotMatch(line.message, /\n\s+at /, 'no stack');

  // The same query without the id finds it too (the brief's operator query).
  const byLevel = (await getJson(`${log.url}/logs?service=grades&level=warn`)).body.entries as any[];
  assert.ok(byLevel.some((e) => e.requestId === requestId && e.code === 'invalid_grade'));
});
