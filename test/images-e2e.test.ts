import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, startFrontendProc, stopAll, waitFor, getJson, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch, allKinds, encodeKind } from './fixtures/pngs.ts';
import { OPS } from '../imageservice/ops.ts';

function form(png: Buffer, fields: Record<string, string> = {}, field = 'uploadfile'): FormData {
  const data = new FormData();
  for (const [k, v] of Object.entries(fields)) data.append(k, v);
  data.append(field, new Blob([new Uint8Array(png)], { type: 'image/png' }), 'picture.png');
  return data;
}

test('end to end through the frontend: every op pixel-exact, the reference paths, and errors in words', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  const frontend = await startFrontendProc(registry.url, { MAX_UPLOAD_BYTES: String(256 * 1024) });
  t.after(() => stopAll(frontend, worker, master, storage, registry));
  await waitForProviders(frontend, 'imagemaster');

  const page = await getJson(`${frontend.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /uploadfile/);

  const { png, kind } = rgbaImage(64, 48, 5);
  // Each op, chosen by the form field, answered in JSON.
  for (const op of OPS) {
    const res = await fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form(png, { op }), headers: { accept: 'application/json' } });
    assert.equal(res.status, 201);
    const task = await res.json();
    assert.equal(task.op, op);
    const ready = await waitFor(async () => {
      const { body } = await getJson(`${frontend.url}/isReady?id=${task.id}`, { headers: { accept: 'application/json' } });
      return body.state === 'done' || body.state === 'failed' ? body : undefined;
    }, `task ${task.id} through the frontend`, 30_000);
    assert.equal(ready.state, 'done');
    assert.equal(ready.ready, true);
    const image = await fetch(`${frontend.url}/getImage?id=${task.id}`);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('content-type'), 'image/png');
    assert.equal(firstMismatch(kind, op, Buffer.from(await image.arrayBuffer())), undefined, op);
  }

  // The reference client: text answers, default op swap-rg.
  const reference = await fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form(png) });
  assert.equal(reference.status, 200);
  const id = Number(await reference.text());
  assert.ok(id > 0);
  await waitFor(async () => (await (await fetch(`${frontend.url}/isReady?id=${id}`)).text()) === 'Your image is ready.', 'reference isReady', 30_000);
  const swapped = Buffer.from(await (await fetch(`${frontend.url}/getImage?id=${id}`)).arrayBuffer());
  assert.equal(firstMismatch(kind, 'swap-rg', swapped), undefined);
  // A palette image with tRNS via ?op= on the query.
  const palette = allKinds().find((k) => k.name === 'palette 4 + tRNS interlaced')!;
  const viaQuery = await fetch(`${frontend.url}/submitTask?op=invert`, { method: 'POST', body: form(encodeKind(palette)) });
  const paletteId = Number(await viaQuery.text());
  await waitFor(async () => (await getJson(`${master.url}/tasks/${paletteId}`)).body.state === 'done', 'palette task', 30_000);
  assert.equal(firstMismatch(palette, 'invert', Buffer.from(await (await fetch(`${frontend.url}/getImage?id=${paletteId}`)).arrayBuffer())), undefined);

  // Errors, each with its status and words.
  const cases: [string, () => Promise<Response>, number, RegExp][] = [
    ['not a PNG', () => fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form(Buffer.from('hello, not an image')) }), 415, /not a PNG/],
    ['wrong field', () => fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form(png, {}, 'file') }), 400, /uploadfile/],
    ['no multipart', () => fetch(`${frontend.url}/submitTask`, { method: 'POST', body: new Uint8Array(png), headers: { 'content-type': 'image/png' } }), 415, /multipart/],
    ['bad op', () => fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form(png, { op: 'sepia' }) }), 400, /swap-rg/],
    ['too large', () => fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form(Buffer.alloc(300 * 1024)) }), 413, /limit/],
    ['bad id', () => fetch(`${frontend.url}/isReady?id=../etc`), 400, /id/],
    ['unknown id', () => fetch(`${frontend.url}/isReady?id=999999`), 404, /no task/],
    ['image of unknown id', () => fetch(`${frontend.url}/getImage?id=999999`), 404, /no task/],
  ];
  for (const [what, pending, status, words] of cases) {
    const res = await pending().catch((err) => assert.fail(`${what}: ${err.cause?.message ?? err.message}`));
    const body = await res.json();
    assert.equal(res.status, status, `${what}: ${JSON.stringify(body)}`);
    assert.match(body.error.message, words, what);
  }
  // Nothing refused became a task.
  const { body } = await getJson(`${master.url}/tasks?limit=1000`);
  assert.equal(body.tasks.length, OPS.length + 2);
});
