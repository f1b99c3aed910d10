/** The log viewer with a token, in real Chromium: the login form first, then, once logged in, the lines and the live tail. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromiumAvailable, launchBrowser } from './browser.ts';
import { postLog, startLogService } from './fixtures/logs.ts';

const TOKEN = 'browser-read-secret';
const post = (url: string, entries: object[]) => postLog(url, JSON.stringify(entries), 'application/json');

test('the log viewer asks for the token, and after logging in shows the lines and follows live', { skip: !chromiumAvailable() && 'no Chromium (apt-get install chromium)' }, async (t) => {
  const log = await startLogService({ REGISTRY_TOKEN: TOKEN });
  t.after(() => log.stop());
  await post(log.url, [{ service: 'ra-browser', level: 'info', message: 'a line behind the login' }]);

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const refused = await page.goto(`${log.url}/?service=ra-browser`);
  assert.equal(refused?.status(), 401);
  await page.locator('form#login input[name=token]').waitFor();
  assert.equal(await page.locator('#rows').count(), 0, 'no viewer before logging in');
  assert.doesNotMatch((await page.content()) ?? '', /a line behind the login/);

  // A wrong token: the form again, saying so.
  await page.locator('input[name=token]').fill('not-the-token');
  await page.locator('form#login button[type=submit]').click();
  await page.locator('.problem', { hasText: 'not the token' }).waitFor();

  await page.locator('input[name=token]').fill(TOKEN);
  await page.locator('form#login button[type=submit]').click();
  await page.waitForURL(`${log.url}/?service=ra-browser`);
  await page.locator('#rows tr', { hasText: 'a line behind the login' }).waitFor({ timeout: 15_000 });
  // The live tail (an EventSource, which sends no header) gets through with the cookie.
  await page.locator('#status.live').waitFor({ timeout: 15_000 });
  await post(log.url, [{ service: 'ra-browser', level: 'warn', message: 'a live line after login' }]);
  await page.locator('#rows tr', { hasText: 'a live line after login' }).waitFor({ timeout: 15_000 });

  const cookies = await page.context().cookies();
  const read = cookies.find((c) => c.name === 'switchboard_read');
  assert.ok(read, 'the login set the read cookie');
  assert.equal(read.httpOnly, true);
  assert.equal(read.sameSite, 'Strict');
  // The page's scripts can't read it.
  assert.equal(await page.evaluate(() => document.cookie.includes('switchboard_read')), false);
});
