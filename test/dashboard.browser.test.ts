import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromiumAvailable, launchBrowser } from './browser.ts';
import { startRegistry, startFixture, freePort } from './helpers.ts';

test('the registry dashboard shows a service go down and come back, live', { skip: !chromiumAvailable() && 'no Chromium (apt-get install chromium)' }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const port = String(await freePort());
  let service = await startFixture('dashboard-demo', registry.url, [], { PORT: port });
  t.after(() => service.stop());

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(registry.url);
  const row = page.locator('tr[data-service="dashboard-demo"][data-instance]');
  await row.locator('.state.up').waitFor({ timeout: 15_000 });
  assert.match(await row.locator('a').getAttribute('href') ?? '', new RegExp(`:${port}$`));
  await page.locator('#status.live').waitFor();

  service.child.kill('SIGKILL');
  await row.locator('.state.down').waitFor({ timeout: 15_000 });
  assert.equal(await row.getAttribute('data-state'), 'down');

  service = await startFixture('dashboard-demo', registry.url, [], { PORT: port });
  await row.locator('.state.up').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('tr[data-service="dashboard-demo"][data-instance]').count(), 1, 'the restarted service is the same row, not a second one');
  assert.match(await page.locator('#summary').textContent() ?? '', /1\/1 instances up/);
});
