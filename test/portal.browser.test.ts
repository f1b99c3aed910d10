import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { startRegistry, tempDir, type Proc } from './helpers.ts';
import { chromiumAvailable, CHROMIUM_PATH, launchBrowser } from './browser.ts';
import { startGrades, startPortal, waitForProviders } from './fixtures/grades.ts';

// CI installs Chromium (.ci/run); elsewhere the test says why it did not run instead of failing.
const skip = !chromiumAvailable() && !process.env.CI ? `no Chromium at ${CHROMIUM_PATH}` : false;

let registry: Proc;
let grades: Proc;
let portal: Proc;
let browser: Browser;

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  grades = await startGrades(registry.url, path.join(tempDir('portal-browser-'), 'grades'));
  portal = await startPortal(registry.url);
  await waitForProviders(portal, 'grades', [grades.url]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
  await grades?.stop();
  await registry?.stop();
});

test('in Chromium: open the student list, add a grade through the form, see the new average', { skip, timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);

  await page.goto(`${portal.url}/`);
  assert.equal(new URL(page.url()).pathname, '/students');
  assert.equal(await page.title(), 'Students · Teacher portal');
  const averillRow = page.locator('tr[data-student-id="1"]');
  assert.equal((await averillRow.locator('.student-average').textContent())?.trim(), '89.0');

  await page.getByRole('link', { name: 'Averill Simen' }).click();
  await page.waitForURL('**/students/1');
  assert.equal(await page.locator('#average').textContent(), '89.0');

  // A title of blanks passes the browser's own check; the portal's error appears on the form, values kept.
  await page.fill('input[name="title"]', '   ');
  await page.selectOption('select[name="type"]', 'Test');
  await page.fill('input[name="score"]', '97');
  await page.click('button[type="submit"]');
  await page.waitForSelector('#title-error');
  assert.match((await page.locator('#title-error').textContent()) ?? '', /required/);
  assert.equal(await page.inputValue('input[name="score"]'), '97');
  assert.equal(await page.inputValue('select[name="type"]'), 'Test');

  await page.fill('input[name="title"]', 'Final exam');
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/students\/1\?added=\d+$/);
  await page.getByRole('status').waitFor();
  assert.ok(await page.locator('#grades td', { hasText: 'Final exam' }).isVisible());
  // (85 + 94 + 88 + 97) / 4
  assert.equal(await page.locator('#average').textContent(), '91.0');

  await page.getByRole('link', { name: '← All students' }).click();
  await page.waitForURL('**/students');
  assert.equal((await page.locator('tr[data-student-id="1"] .student-average').textContent())?.trim(), '91.0');
  await page.close();
});
