/**
 * In Chromium, every page works under its Content-Security-Policy: its inline style applies, its
 * script runs (and reaches its own service), and the browser reports no violation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startRegistry, tempDir, type Proc } from './helpers.ts';
import { chromiumAvailable, CHROMIUM_PATH, launchBrowser } from './browser.ts';
import { startGrades, startPortal, waitForProviders } from './fixtures/grades.ts';
import { startLogService } from './fixtures/logs.ts';
import { startFrontendProc, stopAll } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';

const skip = !chromiumAvailable() && !process.env.CI ? `no Chromium at ${CHROMIUM_PATH}` : false;

let registry: Proc;
let grades: Proc;
let portal: Proc;
let log: Proc;
let frontend: Proc;
let browser: Browser;

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  [grades, log, frontend] = await Promise.all([
    startGrades(registry.url, path.join(tempDir('headers-browser-'), 'grades')),
    startLogService({ REGISTRY_URL: registry.url }),
    startFrontendProc(registry.url),
  ]);
  portal = await startPortal(registry.url);
  await waitForProviders(portal, 'grades', [grades.url]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopAll(frontend, portal, log, grades, registry);
});

/** A page that records every CSP violation the browser reports, as event and as console message. */
async function watchedPage(): Promise<{ page: Page; violations: () => Promise<string[]> }> {
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  const messages: string[] = [];
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) messages.push(message.text());
  });
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { cspViolations: string[] }).cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const violations = async () => [...messages, ...(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations))];
  return { page, violations };
}

const backgroundOf = (page: Page, selector: string) => page.locator(selector).first().evaluate((el) => getComputedStyle(el).backgroundColor);

test('in Chromium: the registry dashboard and the log viewer run their scripts and styles under the CSP', { skip, timeout: 120_000 }, async () => {
  for (const url of [`${registry.url}/`, `${log.url}/`]) {
    const { page, violations } = await watchedPage();
    await page.goto(url);
    // "live" means the script ran and its event stream (connect-src 'self') is open; the class is styled.
    await page.locator('#status.live').waitFor();
    assert.equal(await backgroundOf(page, '#status'), 'rgb(201, 241, 212)', url);
    assert.deepEqual(await violations(), [], url);
    await page.close();
  }
});

test('in Chromium: the portal pages are styled under the CSP, and the form posts', { skip, timeout: 120_000 }, async () => {
  const { page, violations } = await watchedPage();
  await page.goto(`${portal.url}/students/1`);
  assert.equal(await backgroundOf(page, 'header'), 'rgb(31, 41, 51)');
  await page.fill('input[name="title"]', 'Under CSP');
  await page.fill('input[name="score"]', '80');
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/students\/1\?added=\d+$/);
  assert.ok(await page.locator('#grades td', { hasText: 'Under CSP' }).isVisible());
  await page.goto(`${portal.url}/students/999`);
  assert.equal(await backgroundOf(page, 'header'), 'rgb(31, 41, 51)');
  assert.deepEqual(await violations(), []);
  await page.close();
});

test('in Chromium: the upload page runs its script and shows the before-preview (blob:) under the CSP', { skip, timeout: 120_000 }, async () => {
  const { page, violations } = await watchedPage();
  await page.goto(`${frontend.url}/`);
  assert.equal(await backgroundOf(page, '#drop'), 'rgb(250, 250, 250)');
  const file = path.join(tempDir('headers-upload-'), 'small.png');
  fs.writeFileSync(file, rgbaImage(12, 10).png);
  await page.setInputFiles('#files', file);
  // The card and its preview come from the script; the upload itself has no master to go to here.
  await page.waitForFunction(() => {
    const img = document.querySelector('.file[data-name="small.png"] img') as HTMLImageElement | null;
    return img !== null && img.complete && img.naturalWidth === 12;
  });
  await page.locator('.file[data-name="small.png"] .status.failed').waitFor();
  assert.deepEqual(await violations(), []);
  await page.close();
});
