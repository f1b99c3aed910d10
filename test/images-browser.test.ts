import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, startFrontendProc, stopAll, tempDir, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch } from './fixtures/pngs.ts';
import { launchBrowser, chromiumAvailable } from './browser.ts';

test('in Chromium: upload two files on the page, see both done with previews, download a result', { skip: !chromiumAvailable() && 'no Chromium' }, async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  const frontend = await startFrontendProc(registry.url);
  t.after(() => stopAll(frontend, worker, master, storage, registry));
  await waitForProviders(frontend, 'imagemaster');

  const dir = tempDir('browser-upload-');
  const first = rgbaImage(80, 60, 1);
  const second = rgbaImage(50, 40, 2);
  fs.writeFileSync(path.join(dir, 'first.png'), first.png);
  fs.writeFileSync(path.join(dir, 'second.png'), second.png);
  fs.writeFileSync(path.join(dir, 'notes.png'), 'this is text, not a PNG');

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(frontend.url);
  await page.selectOption('#op', 'invert');
  await page.setInputFiles('#files', [path.join(dir, 'first.png'), path.join(dir, 'second.png'), path.join(dir, 'notes.png')]);

  for (const name of ['first.png', 'second.png']) {
    const card = page.locator(`.file[data-name="${name}"]`);
    await card.locator('.status.done').waitFor({ timeout: 60_000 });
    assert.equal(await card.locator('progress').evaluate((el: HTMLProgressElement) => el.value), 100);
    // Both previews are shown and loaded.
    await page.waitForFunction((n) => {
      const imgs = document.querySelectorAll(`.file[data-name="${n}"] img`);
      return imgs.length === 2 && [...imgs].every((img) => (img as HTMLImageElement).complete && (img as HTMLImageElement).naturalWidth > 0);
    }, name, { timeout: 30_000 });
  }
  // The text file is refused in words.
  const refused = page.locator('.file[data-name="notes.png"] .status.failed');
  await refused.waitFor({ timeout: 30_000 });
  assert.match(await refused.textContent() ?? '', /not a PNG/);

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.file[data-name="first.png"] a.download').click()]);
  assert.equal(download.suggestedFilename(), 'first-invert.png');
  const saved = path.join(dir, 'downloaded.png');
  await download.saveAs(saved);
  assert.equal(firstMismatch(first.kind, 'invert', fs.readFileSync(saved)), undefined);
});
