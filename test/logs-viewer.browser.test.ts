/** The log viewer in real Chromium: search, live tail with pause, level colours, click a request id. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromiumAvailable, launchBrowser } from './browser.ts';
import { postLog, startLogService } from './fixtures/logs.ts';

const post = (url: string, entries: object[]) => postLog(url, JSON.stringify(entries), 'application/json');

test('the log viewer searches, follows live, pauses, and traces a request', { skip: !chromiumAvailable() && 'no Chromium (apt-get install chromium)' }, async (t) => {
  const log = await startLogService();
  t.after(() => log.stop());
  await post(log.url, [
    { service: 'v-portal', level: 'info', message: 'GET /students', requestId: 'req-viewer-1' },
    { service: 'v-grades', level: 'error', message: 'database is locked', requestId: 'req-viewer-1' },
    { service: 'v-grades', level: 'info', message: 'unrelated line', requestId: 'req-viewer-2' },
  ]);

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(log.url);
  await page.locator('#status.live').waitFor({ timeout: 15_000 });
  await page.locator('#rows tr').nth(2).waitFor();
  assert.equal(await page.locator('#rows tr.error .lvl-error').count(), 1, 'the error line has the error colour');

  // Live: a new line appears on top.
  await post(log.url, [{ service: 'v-portal', level: 'warn', message: 'live line one' }]);
  await page.locator('#rows tr', { hasText: 'live line one' }).waitFor({ timeout: 15_000 });
  assert.match((await page.locator('#rows tr').first().textContent()) ?? '', /live line one/);

  // Paused: new lines wait, and appear on resume.
  await page.locator('#pause').click();
  await page.locator('#status.paused').waitFor();
  await post(log.url, [{ service: 'v-portal', level: 'info', message: 'while paused' }]);
  await page.locator('#count', { hasText: '1 waiting' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#rows tr', { hasText: 'while paused' }).count(), 0);
  await page.locator('#pause').click();
  await page.locator('#rows tr', { hasText: 'while paused' }).waitFor();

  // A click on a request id shows that request's lines from every service, and only those.
  await page.locator('#rows tr', { hasText: 'GET /students' }).locator('a.rid').click();
  await page.locator('#trace', { hasText: 'req-viewer-1' }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2);
  const text = (await page.locator('#rows').textContent()) ?? '';
  assert.match(text, /database is locked/);
  assert.match(text, /GET \/students/);
  assert.doesNotMatch(text, /unrelated line/);

  // The filters narrow a search.
  await page.locator('#clear').click();
  await page.locator('select[name=level]').selectOption('error');
  await page.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  assert.match((await page.locator('#rows').textContent()) ?? '', /database is locked/);
});
