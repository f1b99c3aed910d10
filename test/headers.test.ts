/**
 * Every page of every service sends a Content-Security-Policy (scripts and styles only with this
 * response's nonce, no framing), nosniff, X-Frame-Options and a referrer policy; so do JSON answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { rawRequest, startRegistry, tempDir, type Proc } from './helpers.ts';
import { startLogService } from './fixtures/logs.ts';
import { startGrades, startPortal, waitForProviders } from './fixtures/grades.ts';
import { startFrontendProc, stopAll } from './fixtures/pipeline.ts';

let registry: Proc;
let log: Proc;
let grades: Proc;
let portal: Proc;
let frontend: Proc;

before(async () => {
  registry = await startRegistry();
  [log, grades, frontend] = await Promise.all([
    startLogService({ REGISTRY_URL: registry.url }),
    startGrades(registry.url, path.join(tempDir('headers-'), 'grades')),
    startFrontendProc(registry.url),
  ]);
  portal = await startPortal(registry.url);
  await waitForProviders(portal, 'grades', [grades.url]);
});

after(() => stopAll(frontend, portal, grades, log, registry));

type Headers = Record<string, string | string[] | undefined>;

function assertCommonHeaders(headers: Headers, what: string): void {
  assert.equal(headers['x-content-type-options'], 'nosniff', what);
  assert.equal(headers['x-frame-options'], 'DENY', what);
  assert.equal(headers['referrer-policy'], 'same-origin', what);
  const csp = String(headers['content-security-policy'] ?? '');
  assert.match(csp, /(^|;)\s*frame-ancestors 'none'/, `${what}: ${csp}`);
}

/** The CSP's directives by name. */
function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0])
      .map(([name, ...values]) => [name, values]),
  );
}

/** Checks a page's headers and that every inline script and style carries the header's nonce; returns the nonce. */
async function checkPage(url: string, expectedStatus = 200): Promise<string> {
  const answer = await rawRequest(url, { method: 'GET' });
  assert.equal(answer.status, expectedStatus, url);
  assert.match(String(answer.headers['content-type']), /text\/html/, url);
  assertCommonHeaders(answer.headers, url);
  const policy = directives(String(answer.headers['content-security-policy']));
  assert.deepEqual(policy.get('default-src'), ["'self'"], url);
  assert.deepEqual(policy.get('object-src'), ["'none'"], url);
  assert.deepEqual(policy.get('base-uri'), ["'self'"], url);
  assert.deepEqual(policy.get('form-action'), ["'self'"], url);
  assert.deepEqual(policy.get('script-src-attr'), ["'none'"], url);
  assert.ok(!policy.has('upgrade-insecure-requests'), `${url}: the services speak plain http`);
  const scriptSrc = policy.get('script-src') ?? [];
  const styleSrc = policy.get('style-src') ?? [];
  for (const list of [scriptSrc, styleSrc]) {
    assert.ok(!list.includes("'unsafe-inline'") && !list.includes("'unsafe-eval'"), `${url}: ${list.join(' ')}`);
  }
  const nonce = /^'nonce-([A-Za-z0-9+/=]{16,})'$/.exec(scriptSrc.find((v) => v.startsWith("'nonce-")) ?? '')?.[1];
  assert.ok(nonce, `${url}: script-src has a nonce`);
  assert.ok(styleSrc.includes(`'nonce-${nonce}'`), `${url}: style-src has the same nonce`);
  const html = String(answer.body);
  const tags = [...html.matchAll(/<(script|style)\b([^>]*)>/gi)];
  assert.ok(tags.length > 0, `${url}: has an inline style or script`);
  for (const [tag] of tags) assert.ok(tag.includes(` nonce="${nonce}"`), `${url}: ${tag} carries the nonce`);
  // Attributes the policy blocks: an inline style="…" or on…= handler would silently not work.
  assert.doesNotMatch(html, /<[^>]+\sstyle=/i, `${url}: no style attributes`);
  assert.doesNotMatch(html, /<[^>]+\son[a-z]+=/i, `${url}: no inline event handlers`);
  return nonce;
}

test('every page sends CSP with a per-response nonce, nosniff, no framing and a referrer policy', async () => {
  const pages = [
    `${registry.url}/`,
    `${log.url}/`,
    `${portal.url}/students`,
    `${portal.url}/students/1`,
    `${frontend.url}/`,
  ];
  for (const url of pages) {
    const first = await checkPage(url);
    const second = await checkPage(url);
    assert.notEqual(first, second, `${url}: a new nonce for every response`);
  }
  // The portal's error pages are pages too.
  await checkPage(`${portal.url}/students/999`, 404);
  await checkPage(`${portal.url}/nowhere`, 404);
  const invalid = await rawRequest(`${portal.url}/students/1/grades`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'title=&type=Quiz&score=5',
  });
  assert.equal(invalid.status, 400);
  assertCommonHeaders(invalid.headers, 'the form with errors');
});

test('JSON answers and errors get nosniff and the same policy', async () => {
  const answers: [string, Awaited<ReturnType<typeof rawRequest>>][] = [];
  for (const proc of [registry, log, grades, portal, frontend]) {
    answers.push([`${proc.url}/health`, await rawRequest(`${proc.url}/health`, { method: 'GET' })]);
    // The portal answers a missing page with an HTML page, every other service with a JSON error.
    if (proc !== portal) answers.push([`${proc.url}/no-such-route`, await rawRequest(`${proc.url}/no-such-route`, { method: 'GET' })]);
  }
  answers.push([`${log.url}/logs`, await rawRequest(`${log.url}/logs`, { method: 'GET' })]);
  answers.push([`${grades.url}/students`, await rawRequest(`${grades.url}/students`, { method: 'GET' })]);
  for (const [url, answer] of answers) {
    assert.match(String(answer.headers['content-type']), /json/, url);
    assertCommonHeaders(answer.headers, url);
    // No inline script runs in JSON, so no nonce is made for it (a nonce per answer was a cost on every API call).
    assert.doesNotMatch(String(answer.headers['content-security-policy']), /nonce-/, `${url}: no nonce in a JSON answer's policy`);
    assert.match(String(answer.headers['content-security-policy']), /(^|;)script-src 'self';/, `${url}: scripts only from the service itself`);
  }
  // The registry's hot registration path, served outside express, says nosniff too.
  const registration = await rawRequest(`${registry.url}/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"serviceName":""}',
  });
  assert.equal(registration.status, 400);
  assert.equal(registration.headers['x-content-type-options'], 'nosniff');
});
