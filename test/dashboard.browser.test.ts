import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromiumAvailable, launchBrowser } from './browser.ts';
import { startRegistry, startFixture, freePort, getJson, waitFor, tempDir } from './helpers.ts';
import { writeStatus } from '../shared/platformStatus.ts';
import { skipUnlessEngine, startEtcd } from '../harness/etcd.ts';
import { startReplicas } from './registryReplicas.ts';

const noChromium = !chromiumAvailable() && 'no Chromium (apt-get install chromium)';
/** The one time format: ISO 8601 in UTC, to the second. */
const ISO_UTC = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;

test('the registry dashboard shows a service go down and come back, live, with ISO UTC times that tick, the reason and its history', { skip: noChromium }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const port = String(await freePort());
  let service = await startFixture('dashboard-demo', registry.url, [], { PORT: port });
  t.after(() => service.stop());
  const lease = await startFixture('dashboard-lease', registry.url, [], { LEASE_TTL_SECONDS: '30' });
  t.after(() => lease.stop());

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(registry.url);
  const row = page.locator('tr[data-service="dashboard-demo"][data-instance]');
  await row.locator('.state.up').waitFor({ timeout: 15_000 });
  await page.locator('#status.live').waitFor();
  const id = (await row.getAttribute('data-instance'))!;
  // The instance link opens its history on this page, not the service's root (a JSON 404 for most services).
  assert.equal(await row.locator('a').getAttribute('href'), `#/instances/${id}`);
  assert.match(await row.locator('a').textContent() ?? '', new RegExp(`:${port}$`));
  assert.match(await row.locator('td.since').textContent() ?? '', ISO_UTC);
  const leaseRow = page.locator('tr[data-service="dashboard-lease"][data-instance]');
  await leaseRow.waitFor();
  assert.match(await leaseRow.textContent() ?? '', new RegExp(`lease until ${ISO_UTC.source}`));

  service.child.kill('SIGKILL');
  await row.locator('.state.down').waitFor({ timeout: 15_000 });
  assert.equal(await row.getAttribute('data-state'), 'down');
  // Refused when the check that finds it dials anew; reset when a check was on the wire as the process died (under load).
  const code = await row.locator('td.reason').getAttribute('data-code');
  assert.ok(code === 'connection_refused' || code === 'connection_reset', `the reason is data: a code (${code})`);
  assert.match(await row.locator('td.reason').textContent() ?? '', code === 'connection_refused' ? /^connection_refused: .*ECONNREFUSED/ : /^connection_reset: /);
  const since = row.locator('td.since');
  assert.match(await since.textContent() ?? '', new RegExp(`down since ${ISO_UTC.source} \\(\\d+s ago\\)`));
  // The relative time ticks while the ISO time stays.
  const before = (await since.textContent())!;
  await waitFor(async () => (await since.textContent()) !== before, 'the "ago" to tick', 5000, 100);
  assert.equal((await since.textContent())!.split(' (')[0], before.split(' (')[0]);
  assert.doesNotMatch(await page.locator('body').textContent() ?? '', /\b(AM|PM)\b/, 'no 12-hour local times');

  // A click on the row: its history, newest first.
  await row.click();
  await page.locator('#detail:not([hidden]) #history tr[data-event="down"]').waitFor();
  assert.match(page.url(), new RegExp(`#/instances/${id}$`));
  assert.deepEqual(await page.locator('#history tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-event'))), ['down', 'registered']);
  assert.match(await page.locator('#history tr[data-event="down"]').textContent() ?? '', new RegExp(code!));
  assert.match(await page.locator('#history tr[data-event="down"] time').textContent() ?? '', ISO_UTC);
  assert.equal((await getJson(`${registry.url}${await page.locator('#detail a', { hasText: 'JSON' }).getAttribute('href')}`)).status, 200);

  service = await startFixture('dashboard-demo', registry.url, [], { PORT: port });
  await row.locator('.state.up').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('tr[data-service="dashboard-demo"][data-instance]').count(), 1, 'the restarted service is the same row, not a second one');
  await page.locator('#history tr[data-event="restarted"]').waitFor();
  assert.match(await page.locator('#summary').textContent() ?? '', /2\/2 instances up/);
  await page.locator('#chart polyline.up').waitFor({ state: 'attached' });

  // Opened from its link, the view shows the same history.
  const direct = await browser.newPage();
  await direct.goto(`${registry.url}/#/instances/${id}`);
  await direct.locator('#history tr[data-event="restarted"]').waitFor();
});

test('with replicas on etcd the dashboard shows each replica, what it checks and patches, and etcd health', { skip: noChromium || skipUnlessEngine('etcd') }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const [a, b] = await startReplicas(etcd, ['a', 'b']);
  t.after(() => Promise.all([a.stop(), b.stop()]));
  const list = `${a.url},${b.url}`;
  const services = [await startFixture('replicated', list, ['other']), await startFixture('replicated', list), await startFixture('other', list)];
  t.after(() => Promise.all(services.map((s) => s.stop())));
  await waitFor(async () => (await getJson(`${a.url}/services`)).body.instances.length === 3, 'three instances');
  await waitFor(async () => (await getJson(`${a.url}/replicas`)).body.replicas?.length === 2, 'both replicas in the set');

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(a.url);
  await page.locator('#replicas:not([hidden]) tr[data-replica="b"]').waitFor({ timeout: 15_000 });
  assert.match(await page.locator('#replicas tr[data-replica="a"]').textContent() ?? '', /\(this one\)/);
  assert.equal(await page.locator('#etcd').getAttribute('data-status'), 'ok');
  const owns = await page.locator('#replicas td.owns').allTextContents();
  assert.equal(owns.map(Number).reduce((x, y) => x + y, 0), 3, 'every instance is checked by one replica');
  const patches = await page.locator('#replicas td.subscribers').allTextContents();
  assert.equal(patches.map(Number).reduce((x, y) => x + y, 0), 1, 'the one subscriber is patched by one replica');
});

test("started by the launcher, the dashboard lists the platform's processes from its status file; otherwise it has no such section", { skip: noChromium }, async (t) => {
  const file = path.join(tempDir('dashboard-platform-'), 'platform.json');
  const startedAt = Date.now() - 65_000;
  writeStatus(file, {
    launcherPid: process.pid,
    startedAt,
    registryUrl: 'http://127.0.0.1:3000',
    processes: [
      { name: 'registry', service: 'registry', pid: process.pid, state: 'up', restarts: 0, startedAt, lastExitCode: null },
      { name: 'imageworker', service: 'worker', pid: null, state: 'restarting', restarts: 2, startedAt: null, lastExitCode: 'SIGKILL' },
    ],
  });
  const launched = await startRegistry({ PLATFORM_STATUS_FILE: file });
  t.after(() => launched.stop());
  const alone = await startRegistry();
  t.after(() => alone.stop());
  assert.equal((await getJson(`${alone.url}/platform`)).body.error.code, 'no_platform');

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(launched.url);
  const worker = page.locator('#platform tr[data-process="imageworker"]');
  await worker.waitFor({ timeout: 15_000 });
  assert.deepEqual(await worker.locator('td').allTextContents(), ['imageworker', '', 'restarting', '2', '', 'SIGKILL']);
  const registry = page.locator('#platform tr[data-process="registry"]');
  assert.equal(await registry.locator('td').nth(1).textContent(), String(process.pid));
  assert.match(await registry.locator('td').nth(4).textContent() ?? '', /^1m \d+s$/);
  const answered = page.waitForResponse((res) => res.url() === `${alone.url}/platform`);
  await page.goto(alone.url);
  assert.equal((await answered).status(), 404);
  await page.locator('#status.live').waitFor();
  assert.equal(await page.locator('#platform').isHidden(), true);
});
