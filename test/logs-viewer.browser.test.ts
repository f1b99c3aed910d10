/**
 * The log viewer in real Chromium: search, live tail with pause, level colours, click a request id;
 * lines in time order with the newest last, filters in the URL, pickers of the known services and
 * levels, the volume bar, and a bad filter shown as an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { chromiumAvailable, launchBrowser } from './browser.ts';
import { postLog, startLogService } from './fixtures/logs.ts';

const post = (url: string, entries: object[]) => postLog(url, JSON.stringify(entries), 'application/json');
const skip = !chromiumAvailable() && 'no Chromium (apt-get install chromium)';
const rowTexts = (page: Page) => page.locator('#rows tr').allTextContents();

test('the log viewer searches, follows live, pauses, and traces a request', { skip }, async (t) => {
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

  // Live: a new line appears at the bottom, the newest last.
  await post(log.url, [{ service: 'v-portal', level: 'warn', message: 'live line one' }]);
  await page.locator('#rows tr', { hasText: 'live line one' }).waitFor({ timeout: 15_000 });
  assert.match((await page.locator('#rows tr').last().textContent()) ?? '', /live line one/);

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

  // The filters narrow a search; a level is a minimum.
  await page.locator('#clear').click();
  await page.locator('select[name=level]').selectOption('error');
  await page.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  assert.match((await page.locator('#rows').textContent()) ?? '', /database is locked/);
  await page.locator('select[name=level]').selectOption('warn');
  await page.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2);
  assert.match((await page.locator('#rows').textContent()) ?? '', /database is locked.*live line one/s, 'warn and worse: the error too');
});

test('the viewer shows lines in time order, keeps its filters in the URL, offers the known labels, and draws the volume', { skip }, async (t) => {
  const log = await startLogService();
  t.after(() => log.stop());
  const now = Date.now();
  const at = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
  // The second batch arrives later with earlier times: the table must still read in time order.
  await post(log.url, [
    { service: 'u-grades', level: 'info', message: 'third', time: at(30) },
    { service: 'u-grades', level: 'error', message: 'fourth', time: at(20) },
  ]);
  await post(log.url, [
    { service: 'u-portal', level: 'info', message: 'first', time: at(50), requestId: '9e1d2c3b-4a59-4687-8899-aabbccddeeff' },
    { service: 'u-portal', level: 'warn', message: 'second', time: at(40), requestId: '9e1d2c3b-4a59-4687-8899-aabbccddeeff' },
  ]);

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(log.url);
  await page.locator('#status.live').waitFor({ timeout: 15_000 });
  await page.locator('#rows tr').nth(3).waitFor();
  assert.deepEqual((await rowTexts(page)).map((r) => /(first|second|third|fourth)/.exec(r)?.[1]), ['first', 'second', 'third', 'fourth']);
  assert.equal(await page.locator('#count').textContent(), '4 lines shown');

  // The pickers: the services with lines, and the levels.
  await page.waitForFunction(() => document.querySelectorAll('#services option').length === 2);
  assert.deepEqual(await page.locator('#services option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)), ['u-grades', 'u-portal']);
  assert.deepEqual(
    await page.locator('select[name=level] option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)),
    ['', 'error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'],
  );

  // The volume bar: a bar per bucket with lines, and the total.
  await page.locator('#volume rect.v').first().waitFor();
  assert.match((await page.locator('#volume-text').textContent()) ?? '', /^4 lines from /);
  assert.ok((await page.locator('#volume rect.v-error').count()) >= 1, 'the error has its colour in the bar');

  // A search is in the URL; reloading the URL (a bookmark) shows the same view.
  await page.locator('input[name=service]').fill('u-portal');
  await page.locator('select[name=level]').selectOption('warn');
  await page.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  assert.equal(await page.locator('#count').textContent(), '1 line shown');
  const bookmark = new URL(page.url());
  assert.equal(bookmark.searchParams.get('service'), 'u-portal');
  assert.equal(bookmark.searchParams.get('level'), 'warn');
  const other = await browser.newPage();
  await other.goto(bookmark.href);
  await other.locator('#status.live').waitFor({ timeout: 15_000 });
  assert.equal(await other.locator('input[name=service]').inputValue(), 'u-portal');
  assert.equal(await other.locator('select[name=level]').inputValue(), 'warn');
  assert.deepEqual((await rowTexts(other)).map((r) => /(first|second|third|fourth)/.exec(r)?.[1]), ['second']);
  // Back goes to the view before.
  await page.goBack();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 4);
  assert.equal(await page.locator('input[name=service]').inputValue(), '');

  // A request id's first 8 characters, as the table shows them, find the request.
  await page.locator('input[name=requestId]').fill('9e1d2c3b');
  await page.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2);
  assert.match((await page.locator('#rows').textContent()) ?? '', /first.*second/s);

  // A service with no lines is said so, with the services that have some.
  await page.goto(`${log.url}/?service=master`);
  await page.locator('#notice', { hasText: 'No lines from service "master"' }).waitFor({ timeout: 15_000 });
  assert.match((await page.locator('#notice').textContent()) ?? '', /Services with lines: u-grades, u-portal/);

  // An unknown level in a shared URL is refused in words, not dropped.
  await page.goto(`${log.url}/?level=warning`);
  await page.locator('#error', { hasText: 'level: unknown level "warning": the levels are error, warn, info' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#rows tr').count(), 0);

  // A bad since is an error, not "N lines shown" above an empty table.
  await page.goto(`${log.url}/?since=last-tuesday`);
  await page.locator('#error', { hasText: 'since:' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#rows tr').count(), 0);
  assert.equal(await page.locator('#count').textContent(), '');
  assert.ok(await page.locator('#volume').isHidden());
  assert.equal(await page.locator('input[name=since]').inputValue(), 'last-tuesday', 'the bad value stays, to be corrected');
  await page.locator('input[name=since]').fill('1h');
  await page.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 4);
  assert.ok(await page.locator('#error').isHidden());
});
