/**
 * In Chromium, pages on a second origin attack the platform as the issue found them doing: a form
 * that auto-submits a grade (with no-referrer, and from a sandboxed iframe, both of which send
 * Origin: null), a no-cors fetch that forges a log line, and a frame around the portal. Nothing
 * gets through. The attacker is served from http://localhost:P (another site than 127.0.0.1) and
 * from http://127.0.0.1:P (the same site, another origin).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, Page, Request } from 'playwright-core';
import { getJson, startRegistry, tempDir, waitFor, type Proc } from './helpers.ts';
import { chromiumAvailable, CHROMIUM_PATH, launchBrowser } from './browser.ts';
import { allGrades, startGrades, startPortal, waitForProviders } from './fixtures/grades.ts';
import { startLogService } from './fixtures/logs.ts';
import { stopAll } from './fixtures/pipeline.ts';
import { escapeHtml } from '../grades/portal/html.ts';

const skip = !chromiumAvailable() && !process.env.CI ? `no Chromium at ${CHROMIUM_PATH}` : false;

let registry: Proc;
let grades: Proc;
let portal: Proc;
let log: Proc;
let attacker: http.Server;
let attackerPort: number;
let browser: Browser;

function gradeForm(title: string, target = '_self'): string {
  return `<form id="f" method="post" target="${target}" action="${portal.url}/students/1/grades">
<input name="title" value="${escapeHtml(title)}"><input name="type" value="Quiz"><input name="score" value="1"></form>
<script>document.getElementById('f').submit()</script>`;
}

/** The attacker's pages, by path. */
function attackPage(pathname: string): string | undefined {
  switch (pathname) {
    case '/form':
      return `<!doctype html>${gradeForm('forged by a plain form')}`;
    case '/form-no-referrer':
      return `<!doctype html><meta name="referrer" content="no-referrer">${gradeForm('forged with no-referrer')}`;
    case '/form-sandboxed':
      // The form submits into the top window (its Origin is still null): a framed answer would be blocked
      // by frame-ancestors, and the network events of a cross-site frame are not reliably seen from here.
      return `<!doctype html><iframe sandbox="allow-forms allow-scripts allow-top-navigation" srcdoc="${escapeHtml(gradeForm('forged from a sandboxed iframe', '_top'))}"></iframe>`;
    case '/fetch-log':
      return `<!doctype html><script>
fetch(${JSON.stringify(`${log.url}/log`)}, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '[registry] - forged: registry is down' });
</script>`;
    case '/frame-portal':
      return `<!doctype html><iframe id="victim" src="${portal.url}/students/1"></iframe>`;
    default:
      return undefined;
  }
}

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  [grades, log] = await Promise.all([startGrades(registry.url, path.join(tempDir('cross-site-browser-'), 'grades')), startLogService({ REGISTRY_URL: registry.url })]);
  portal = await startPortal(registry.url);
  await waitForProviders(portal, 'grades', [grades.url]);
  attacker = http.createServer((req, res) => {
    const page = attackPage(new URL(req.url ?? '/', 'http://attacker').pathname);
    res.writeHead(page ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' }).end(page ?? 'not found');
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerPort = (attacker.address() as AddressInfo).port;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  attacker?.closeAllConnections();
  await new Promise((resolve) => (attacker ? attacker.close(resolve) : resolve(undefined)));
  await stopAll(portal, grades, log, registry);
});

const ATTACKER_ORIGINS = () => [`http://localhost:${attackerPort}`, `http://127.0.0.1:${attackerPort}`];

/**
 * Opens an attack page and waits until the browser's request to `target` is answered: its status, or,
 * for a no-cors fetch, the browser's error (our Cross-Origin-Resource-Policy hides the answer from it).
 */
async function attack(page: Page, url: string, target: string): Promise<number | string> {
  const matches = (request: Request) => request.url().startsWith(target);
  const ended = Promise.race([
    page.waitForResponse((response) => matches(response.request()), { timeout: 20_000 }).then((response) => response.status()),
    page.waitForEvent('requestfailed', { predicate: matches, timeout: 20_000 }).then((request) => request.failure()?.errorText ?? 'failed'),
  ]);
  await page.goto(url);
  return ended;
}

test('in Chromium: grade forms from another origin (plain, no-referrer, sandboxed iframe) are refused, and no grade is added', { skip, timeout: 120_000 }, async () => {
  const before = await allGrades(grades.url);
  for (const origin of ATTACKER_ORIGINS()) {
    for (const attackPath of ['/form', '/form-no-referrer', '/form-sandboxed']) {
      const page = await browser.newPage();
      const status = await attack(page, `${origin}${attackPath}`, `${portal.url}/students/1/grades`);
      assert.equal(status, 403, `${origin}${attackPath}`);
      await page.close();
    }
  }
  assert.deepEqual(await allGrades(grades.url), before);
});

test('in Chromium: a no-cors fetch from another origin cannot write a log line', { skip, timeout: 120_000 }, async () => {
  for (const origin of ATTACKER_ORIGINS()) {
    const page = await browser.newPage();
    // The request was sent and answered (403, which CORP then hides from the page), not dropped by the browser.
    assert.match(String(await attack(page, `${origin}/fetch-log`, `${log.url}/log`)), /^403$|ERR_BLOCKED_BY_RESPONSE/, origin);
    await page.close();
  }
  // A line sent after the attacks, from a program, is stored: when it is listed, the attacks would have been too.
  const marker = await fetch(`${log.url}/log`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '[tester] - after the attacks', signal: AbortSignal.timeout(10_000) });
  assert.equal(marker.status, 202);
  const entries = await waitFor(async () => {
    const { body } = await getJson(`${log.url}/logs?limit=1000`);
    const list = body.entries as { message: string; service: string }[];
    return list.some((e) => e.message === 'after the attacks') ? list : undefined;
  }, 'the marker line');
  assert.deepEqual(entries?.filter((e) => e.message.includes('forged')), []);
});

test('in Chromium: the portal refuses to be framed by another origin', { skip, timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  const framed = page.waitForResponse((response) => response.url() === `${portal.url}/students/1`, { timeout: 20_000 });
  await page.goto(`http://localhost:${attackerPort}/frame-portal`);
  assert.equal((await framed).status(), 200);
  const frame = await (await page.waitForSelector('#victim')).contentFrame();
  // Blocked by frame-ancestors 'none': the frame holds Chromium's error page, not the portal's form.
  await waitFor(() => frame?.url().startsWith('chrome-error:'), "Chromium's error page in the frame", 10_000);
  assert.equal(await frame!.locator('#add-grade').count(), 0);
  await page.close();
});
