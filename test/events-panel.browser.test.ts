/** In Chromium: the events service's page shows each subscriber with its deliveries, under its CSP. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startRegistry, waitFor } from './helpers.ts';
import { chromiumAvailable, CHROMIUM_PATH, launchBrowser } from './browser.ts';
import { startEventsService, startRecorder } from './events-helpers.ts';

const skip = !chromiumAvailable() && !process.env.CI ? `no Chromium at ${CHROMIUM_PATH}` : false;

test('in Chromium: the events page lists a subscriber with what it was delivered', { skip, timeout: 120_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const events = await startEventsService(registry.url);
  t.after(() => events.stop());
  const recorder = await startRecorder();
  t.after(() => recorder.close());
  assert.equal((await getJson(`${events.url}/registerAndKeepAlive?address=${recorder.address}`, { method: 'POST' })).status, 200);
  for (let i = 0; i < 3; i++) {
    const sent = await getJson(`${events.url}/sendMessage`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `hello ${i}` });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
  }
  await waitFor(() => recorder.received.length === 3, 'the three deliveries');

  const page = await (await launchBrowser()).newPage();
  t.after(() => page.context().browser()?.close());
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text());
  });
  await page.goto(`${events.url}/`);
  await page.locator('#status.live').waitFor();
  const row = page.locator('#rows tr', { hasText: recorder.address });
  await row.waitFor();
  // The recorder has the three before the events service has counted the last answer: the page, live, catches up.
  let cells: string[] = [];
  await waitFor(async () => {
    cells = await row.locator('td').allTextContents();
    return cells[3] === 'up' && cells[6] === '3';
  }, 'the row to show the subscriber up with 3 delivered').catch((err: Error) => assert.fail(`${err.message}; the row: ${cells.join(' | ')}`));
  assert.equal(cells[0], recorder.address);
  // The registry's own instance events count too.
  const published = Number(/events published: (\d+)/.exec((await page.locator('#published').textContent()) ?? '')?.[1]);
  assert.ok(published >= 3, `${published} events published`);
  assert.deepEqual(violations, []);
});
