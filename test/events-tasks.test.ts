/**
 * Task events: the master publishes task.created/running/done/failed, the frontend subscribes and
 * pushes them to browsers at GET /taskEvents (server-sent events); without an events service the
 * stream says so ({live: false}) and the page polls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { getJson, tempDir, waitFor } from './helpers.ts';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, startFrontendProc, stopAll, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';
import { RawEventReader } from './rawEventReader.ts';
import { startEventsService, subscriberViews } from './events-helpers.ts';
import { launchBrowser, chromiumAvailable } from './browser.ts';

async function upload(frontendUrl: string, png: Buffer): Promise<number> {
  const form = new FormData();
  form.append('op', 'invert');
  form.append('uploadfile', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
  const res = await fetch(`${frontendUrl}/submitTask`, { method: 'POST', body: form, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: number }).id;
}

const taskEvents = (reader: RawEventReader, id: number) => reader.named('task').map((e) => JSON.parse(e.data)).filter((t) => t.id === id);

test("the frontend's event stream pushes an upload's task states, from created to done", { timeout: 180_000 }, async (t) => {
  const registry = await startRegistry();
  const events = await startEventsService(registry.url);
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const frontend = await startFrontendProc(registry.url);
  t.after(() => stopAll(frontend, master, storage, events, registry));
  await waitForProviders(frontend, 'imagemaster');
  await waitForProviders(frontend, 'events');
  await waitForProviders(master, 'events');
  await waitFor(async () => (await subscriberViews(events.url)).get(`instance:${frontend.url}`)?.state === 'up', 'the frontend subscribed to task.*');

  const reader = new RawEventReader(`${frontend.url}/taskEvents`);
  t.after(() => reader.close());
  await waitFor(() => reader.named('status').length > 0, 'the stream greeting');
  assert.deepEqual(JSON.parse(reader.named('status')[0].data), { live: true });

  const id = await upload(frontend.url, rgbaImage(40, 30, 3).png);
  await waitFor(() => taskEvents(reader, id).some((e) => e.state === 'pending'), 'task.created on the stream');
  // The worker comes after the upload, so the task waits first and then runs.
  const worker = await startWorkerProc(registry.url);
  t.after(() => worker.stop());
  await waitFor(() => taskEvents(reader, id).some((e) => e.state === 'done'), 'task.done on the stream', 60_000);
  const states = taskEvents(reader, id).map((e) => e.state);
  assert.deepEqual(states, ['pending', 'running', 'done'], 'each state once, in order');
  const done = taskEvents(reader, id).at(-1);
  assert.equal(done.op, 'invert');
  assert.equal(done.attempts, 1);
  assert.equal(done.leaseToken, undefined, 'no lease token leaves the master');
  assert.equal((await getJson(`${frontend.url}/isReady?id=${id}`, { headers: { accept: 'application/json' } })).body.state, 'done');

  if (!chromiumAvailable()) return;
  // The page, with events live: it learns "done" from the stream (its safety poll is 5 s apart).
  const dir = tempDir('events-page-');
  fs.writeFileSync(path.join(dir, 'pushed.png'), rgbaImage(30, 20, 5).png);
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const polls: string[] = [];
  page.on('request', (req) => req.url().includes('isReady') && polls.push(req.url()));
  await page.goto(frontend.url);
  await page.setInputFiles('#files', [path.join(dir, 'pushed.png')]);
  await page.locator('.file[data-name="pushed.png"] .status.done').waitFor({ timeout: 60_000 });
  assert.ok(polls.length <= 2, `a push, not polling (${polls.length} isReady requests)`);
});

test('without an events service the stream says it is not live (the page polls), and uploads work', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url);
  const frontend = await startFrontendProc(registry.url);
  t.after(() => stopAll(frontend, worker, master, storage, registry));
  await waitForProviders(frontend, 'imagemaster');
  const reader = new RawEventReader(`${frontend.url}/taskEvents`);
  t.after(() => reader.close());
  await waitFor(() => reader.named('status').length > 0, 'the stream greeting');
  assert.deepEqual(JSON.parse(reader.named('status')[0].data), { live: false });
  const id = await upload(frontend.url, rgbaImage(20, 20, 4).png);
  await waitFor(async () => (await getJson(`${frontend.url}/isReady?id=${id}`, { headers: { accept: 'application/json' } })).body.state === 'done', 'the task done', 60_000);
  assert.equal(reader.named('task').length, 0);
});
