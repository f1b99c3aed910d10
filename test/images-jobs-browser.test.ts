/**
 * The upload page's jobs section (#17) in Chromium: a folder picked becomes one job (the non-PNG skipped and
 * listed), a .zip too; pause and resume from the card; all results downloaded as one .zip with the files' names,
 * pixel-exact. And the frontend's job routes' refusals over HTTP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, startFrontendProc, stopAll, tempDir, waitForProviders, getJson } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch, type PngKind } from './fixtures/pngs.ts';
import { zipOf } from './fixtures/zip.ts';
import { launchBrowser, chromiumAvailable } from './browser.ts';
import { ZipArchive } from '../imageservice/bulk/zipArchive.ts';

const limits = { maxEntryBytes: 1 << 24, maxTotalBytes: 1 << 26, maxEntries: 1000 };

async function entriesOf(file: string): Promise<Map<string, Buffer>> {
  const { archive, entries } = await ZipArchive.open(file, limits);
  const out = new Map<string, Buffer>();
  for (const e of entries) out.set(e.name, await archive.read(e.name));
  archive.close();
  return out;
}

test('in Chromium: a folder and a .zip as jobs, pause and resume on the card, all results as one .zip', { skip: !chromiumAvailable() && 'no Chromium' }, async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const frontend = await startFrontendProc(registry.url);
  let worker: Awaited<ReturnType<typeof startWorkerProc>> | undefined;
  t.after(() => stopAll(worker, frontend, master, storage, registry));
  await waitForProviders(frontend, 'imagemaster');

  const dir = tempDir('jobs-page-');
  const folder = path.join(dir, 'album');
  fs.mkdirSync(path.join(folder, 'sub'), { recursive: true });
  const kinds = new Map<string, PngKind>();
  for (const [rel, seed] of [['a.png', 1], ['sub/b.png', 2], ['sub/c.png', 3]] as const) {
    const { png, kind } = rgbaImage(20, 12, seed);
    fs.writeFileSync(path.join(folder, rel), png);
    kinds.set(`album/${rel.replace(/\.png$/, '.invert.png')}`, kind);
  }
  fs.writeFileSync(path.join(folder, 'notes.txt'), 'not a PNG');
  const zipped = rgbaImage(9, 9, 7);
  fs.writeFileSync(path.join(dir, 'pack.zip'), zipOf([{ name: 'in/z.png', data: zipped.png, deflate: true }, { name: '../evil.png', data: zipped.png }]));

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(frontend.url);
  await page.selectOption('#op', 'invert');

  // No worker yet: the job waits, and is paused and resumed from its card.
  await page.setInputFiles('#job-folder', folder);
  const card = page.locator('.job').first();
  await card.locator('.status', { hasText: 'active: 0 of 3 ended' }).waitFor({ timeout: 30_000 });
  await card.locator('.skipped', { hasText: 'Skipped 1: album/notes.txt (not a PNG)' }).waitFor();
  await card.locator('button.pause').click();
  await card.locator('.status', { hasText: /^paused: 0 of 3 ended/ }).waitFor();
  assert.equal(await card.locator('button.pause').textContent(), 'Resume');
  const jobId = Number(await card.getAttribute('data-job-id'));
  assert.equal((await getJson(`${master.url}/jobs/${jobId}`)).body.state, 'paused');
  worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  await card.locator('button.pause').click();
  await card.locator('.status', { hasText: /^active: 3 of 3 ended \(3 done/ }).waitFor({ timeout: 60_000 });

  const [download] = await Promise.all([page.waitForEvent('download'), card.locator('button.download').click()]);
  const saved = path.join(dir, 'results.zip');
  await download.saveAs(saved);
  const results = await entriesOf(saved);
  assert.deepEqual([...results.keys()].sort(), [...kinds.keys()].sort());
  for (const [name, kind] of kinds) assert.equal(firstMismatch(kind, 'invert', results.get(name)!), undefined, name);

  // A .zip: read by the frontend, its unsafe entry refused and listed.
  await page.setInputFiles('#job-zip', path.join(dir, 'pack.zip'));
  const zipCard = page.locator('.job').first();
  await zipCard.locator('.skipped', { hasText: /Skipped 1: \.\.\/evil\.png \(refused: invalid relative path/ }).waitFor({ timeout: 30_000 });
  await zipCard.locator('.status', { hasText: /^active: 1 of 1 ended \(1 done/ }).waitFor({ timeout: 60_000 });
  const [zipDownload] = await Promise.all([page.waitForEvent('download'), zipCard.locator('button.download').click()]);
  await zipDownload.saveAs(path.join(dir, 'zip-results.zip'));
  const zipResults = await entriesOf(path.join(dir, 'zip-results.zip'));
  assert.deepEqual([...zipResults.keys()], ['in/z.invert.png']);
  assert.equal(firstMismatch(zipped.kind, 'invert', zipResults.get('in/z.invert.png')!), undefined);

  // A reload lists both jobs again.
  await page.reload();
  await page.locator('.job').nth(1).waitFor();
  assert.equal(await page.locator('.job').count(), 2);
  assert.equal(fs.readdirSync(dir).filter((n) => n.startsWith('evil')).length, 0);
});

test("the frontend's job routes refuse in words: a bad archive, no results yet, a missing key, an unknown job", async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const frontend = await startFrontendProc(registry.url, { MAX_ARCHIVE_BYTES: String(64 * 1024) });
  t.after(() => stopAll(frontend, master, storage, registry));
  await waitForProviders(frontend, 'imagemaster');
  const made = await fetch(`${frontend.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'page job', op: 'grayscale' }) });
  assert.equal(made.status, 201);
  const { id } = (await made.json()) as { id: number };
  const cases: [string, () => Promise<Response>, number, string, RegExp][] = [
    ['a corrupt archive', () => fetch(`${frontend.url}/jobs/${id}/archive`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: 'not a zip' }), 422, 'bad_archive', /the archive is not a readable zip archive/],
    ['an archive over the limit', () => fetch(`${frontend.url}/jobs/${id}/archive`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: new Uint8Array(100 * 1024) }), 413, 'payload_too_large', /limit of 65536 bytes/],
    ['no results yet', () => fetch(`${frontend.url}/jobs/${id}/results.zip`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }), 409, 'no_results', /no finished image/],
    ['no key', () => fetch(`${frontend.url}/jobs/${id}/images`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(rgbaImage(4, 4, 1).png) }), 400, 'invalid_idempotency_key', /expected string|must be/],
    ['an unknown job', () => fetch(`${frontend.url}/jobs/999999`), 404, 'job_not_found', /no job 999999/],
  ];
  for (const [what, send, status, code, words] of cases) {
    const res = await send();
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(res.status, status, `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.error.code, code, what);
    assert.match(body.error.message, words, what);
  }
  // Nothing of the refused archives stays in the temporary folder.
  const os = await import('node:os');
  assert.deepEqual(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('switchboard-archive-')), []);
  // The same key twice through the page's route: one task.
  const png = rgbaImage(4, 4, 1).png;
  const send = () => fetch(`${frontend.url}/jobs/${id}/images`, { method: 'POST', headers: { 'content-type': 'image/png', 'idempotency-key': 'page-key-1' }, body: new Uint8Array(png) });
  assert.equal((await send()).status, 201);
  assert.equal((await send()).status, 200);
  assert.equal((await getJson(`${master.url}/jobs/${id}`)).body.total, 1);
});
