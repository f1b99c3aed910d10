/**
 * One trace per image: the upload's request id follows the task through the master, the worker and storage, and
 * the log service returns the image's whole life under that one id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFrontendProc, startMasterProc, startRegistry, startStorageProc, startWorkerProc, stopAll, waitFor, waitForProviders, waitForTask, getJson } from './fixtures/pipeline.ts';
import { startLogService } from './fixtures/logs.ts';
import { noisePng } from './fixtures/pngs.ts';

interface Line {
  time: string;
  service: string;
  message: string;
  requestId?: string;
}

test('the log service returns one upload\'s lines from frontend, master, worker and storage, in time order', async (t) => {
  const registry = await startRegistry();
  const log = await startLogService({ REGISTRY_URL: registry.url });
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '1']);
  const frontend = await startFrontendProc(registry.url);
  t.after(() => stopAll(frontend, worker, master, storage, log, registry));
  await Promise.all([
    waitForProviders(frontend, 'imagemaster'),
    ...[frontend, master, storage].map((p) => waitForProviders(p, 'log')),
    waitForProviders(master, 'imagestorage'),
  ]);

  const form = new FormData();
  // Large enough to arrive in many pieces: the master streams it into storage from the body's events, and the
  // request id must still come along.
  form.append('uploadfile', new Blob([new Uint8Array(noisePng(256, 256))], { type: 'image/png' }), 'traced.png');
  const res = await fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 201);
  const requestId = res.headers.get('x-request-id')!;
  assert.ok(requestId);
  const task = await res.json();
  assert.equal(task.traceId, requestId, 'the task records its upload\'s request id');
  assert.equal((await waitForTask(master.url, task.id)).state, 'done');

  const id = task.id as number;
  // Each step of the image's life, as the service that did it logs it.
  const steps: [string, RegExp][] = [
    ['imagestorage', /^stored working\//],
    ['imagemaster', new RegExp(`^task ${id} created`)],
    ['imagemaster', new RegExp(`^task ${id} claimed by`)],
    ['imageworker', new RegExp(`^task ${id} claimed`)],
    ['imagestorage', /^read working\//],
    ['imageworker', new RegExp(`^task ${id}: downloaded`)],
    ['imageworker', new RegExp(`^task ${id}: transformed`)],
    ['imagestorage', /^stored finished\//],
    ['imageworker', new RegExp(`^task ${id}: uploaded`)],
    ['imagemaster', new RegExp(`^task ${id} done`)],
    ['imageworker', new RegExp(`^task ${id} done`)],
  ];
  const find = (entries: Line[]) => steps.map(([service, pattern]) => entries.find((e) => e.service === service && pattern.test(e.message)));
  const entries = (await waitFor(async () => {
    const found = (await getJson(`${log.url}/logs?requestId=${encodeURIComponent(requestId)}&limit=1000`)).body.entries as Line[];
    const frontendLine = found.some((e) => e.service === 'imagefrontend' && e.message.includes(`task ${id}`));
    return frontendLine && find(found).every(Boolean) ? found : undefined;
  }, 'every step of the upload under its request id', 30_000, 100))!;

  assert.ok(entries.every((e) => e.requestId === requestId));
  assert.deepEqual(new Set(entries.map((e) => e.service)), new Set(['imagefrontend', 'imagemaster', 'imageworker', 'imagestorage']));
  const times = entries.map((e) => Date.parse(e.time));
  const ascending = times.every((ms, i) => i === 0 || times[i - 1] <= ms);
  const descending = times.every((ms, i) => i === 0 || times[i - 1] >= ms);
  assert.ok(ascending || descending, `the answer is in time order: ${entries.map((e) => `${e.time} ${e.service} ${e.message}`).join('\n')}`);
  // The steps' own times tell the image's story in the order it happened, across four processes.
  const stepTimes = find(entries).map((e) => Date.parse(e!.time));
  for (let i = 1; i < steps.length; i++) {
    assert.ok(stepTimes[i - 1] <= stepTimes[i], `${steps[i - 1][1]} (${steps[i - 1][0]}) before ${steps[i][1]} (${steps[i][0]})`);
  }
  const frontendLine = entries.find((e) => e.service === 'imagefrontend')!;
  assert.ok(Date.parse(frontendLine.time) >= stepTimes[1], 'the frontend says "submitted" after the master created the task');
});
