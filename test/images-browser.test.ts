import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, startFrontendProc, stopAll, tempDir, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch } from './fixtures/pngs.ts';
import { launchBrowser, chromiumAvailable } from './browser.ts';

test('in Chromium: upload two files on the page, see both done with previews, download a result; a refused file is an error card; a reload lists the tasks again', { skip: !chromiumAvailable() && 'no Chromium' }, async (t) => {
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
  fs.writeFileSync(path.join(dir, 'holiday-notes.png'), 'this is text, not a PNG');

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(frontend.url);
  await page.selectOption('#op', 'invert');
  await page.setInputFiles('#files', [path.join(dir, 'first.png'), path.join(dir, 'second.png'), path.join(dir, 'holiday-notes.png')]);

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
  // The text file is refused in words, on an error card: no progress bar, no broken "before" image.
  const refusedCard = page.locator('.file[data-name="holiday-notes.png"]');
  const refused = refusedCard.locator('.status.failed');
  await refused.waitFor({ timeout: 30_000 });
  assert.match(await refused.textContent() ?? '', /not a PNG/);
  assert.match((await refusedCard.getAttribute('class')) ?? '', /\berror\b/);
  assert.equal(await refusedCard.locator('progress').count(), 0, 'no progress bar on a refused file');
  // The browser's own verdict on the text file as an image has come (then the broken preview would be drawn).
  await page.waitForFunction(() => [...document.querySelectorAll('.file[data-name="holiday-notes.png"] img[alt="before"]')].every((img) => (img as HTMLImageElement).complete));
  const shownImages = await refusedCard.locator('img').evaluateAll((imgs) =>
    imgs.filter((img) => (img as HTMLElement).offsetParent !== null).map((img) => ({ alt: (img as HTMLImageElement).alt, width: (img as HTMLImageElement).naturalWidth })),
  );
  assert.deepEqual(shownImages, [], 'no image shown on the refused card');
  // Each card says which operation it got.
  for (const name of ['first.png', 'second.png', 'holiday-notes.png']) assert.equal(await page.locator(`.file[data-name="${name}"] .op`).textContent(), 'Invert colours');
  // On a narrow page the long error wraps under the file name instead of squeezing it onto two lines.
  await page.setViewportSize({ width: 480, height: 800 });
  const name = await refusedCard.locator('.name').evaluate((el) => ({ height: el.getBoundingClientRect().height, line: parseFloat(getComputedStyle(el).lineHeight) }));
  assert.ok(name.height < name.line * 1.5, `the name takes one line: ${JSON.stringify(name)}`);
  await page.setViewportSize({ width: 1280, height: 720 });

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.file[data-name="first.png"] a.download').click()]);
  assert.equal(download.suggestedFilename(), 'first-invert.png');
  const saved = path.join(dir, 'downloaded.png');
  await download.saveAs(saved);
  assert.equal(firstMismatch(first.kind, 'invert', fs.readFileSync(saved)), undefined);

  // After a reload the page lists this browser's tasks again, with their state from the master; the refused file had no task.
  const ids = await page.locator('.file[data-task-id]').evaluateAll((cards) => cards.map((c) => [(c as HTMLElement).dataset.name, (c as HTMLElement).dataset.taskId]));
  await page.reload();
  for (const name of ['first.png', 'second.png']) {
    const card = page.locator(`.file[data-name="${name}"]`);
    await card.locator('.status.done').waitFor({ timeout: 30_000 });
    assert.equal(await card.getAttribute('data-task-id'), ids.find(([n]) => n === name)![1]);
    assert.equal(await card.locator('.op').textContent(), 'Invert colours');
    await page.waitForFunction((n) => {
      const img = document.querySelector(`.file[data-name="${n}"] img[alt="after"]`) as HTMLImageElement | null;
      return img !== null && img.complete && img.naturalWidth > 0;
    }, name, { timeout: 30_000 });
  }
  assert.equal(await page.locator('.file[data-name="holiday-notes.png"]').count(), 0);
  assert.equal(await page.locator('.file').count(), 2);
});
