/**
 * Cross-site requests, as a browser sends them for a page on another site (Origin, Sec-Fetch-Site),
 * are refused with 403 cross_site on every state-changing route, and change nothing; the same
 * requests from a program (no Origin) or from the service's own page still work.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { getJson, rawRequest, startRegistry, tempDir, type Proc } from './helpers.ts';
import { startLogService } from './fixtures/logs.ts';
import { allGrades, startGrades, startPortal, waitForProviders as waitForGradesProvider } from './fixtures/grades.ts';
import { startFrontendProc, startMasterProc, startStorageProc, stopAll, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';

/** The headers Chromium sends on a form or no-cors fetch from a page on another site. */
const FROM_EVIL = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };
/** A sandboxed iframe, or a page with `<meta name=referrer content=no-referrer>`. */
const FROM_OPAQUE = { origin: 'null', 'sec-fetch-site': 'cross-site' };
/** An old browser without Sec-Fetch-Site, same cases. */
const OLD_BROWSER_EVIL = { origin: 'https://evil.example' };
const OLD_BROWSER_OPAQUE = { origin: 'null' };
const ATTACKS = { FROM_EVIL, FROM_OPAQUE, OLD_BROWSER_EVIL, OLD_BROWSER_OPAQUE };

function assertCrossSite(answer: { status: number; body: any }, what: string): void {
  assert.equal(answer.status, 403, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body?.error?.code, 'cross_site', what);
  assert.equal(typeof answer.body.error.message, 'string', what);
}

let registry: Proc;
let log: Proc;
let grades: Proc;
let portal: Proc;

before(async () => {
  registry = await startRegistry();
  [log, grades] = await Promise.all([startLogService({ REGISTRY_URL: registry.url }), startGrades(registry.url, path.join(tempDir('cross-site-'), 'grades'))]);
  portal = await startPortal(registry.url);
  await waitForGradesProvider(portal, 'grades', [grades.url]);
});

after(() => stopAll(portal, grades, log, registry));

describe('the log service', () => {
  test('POST /log from another site is refused and nothing is stored; from a program it is stored', async () => {
    for (const [name, headers] of Object.entries(ATTACKS)) {
      const answer = await rawRequest(`${log.url}/log`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', ...headers },
        body: `[registry] - forged by ${name}`,
      });
      assertCrossSite(answer, name);
    }
    const program = await rawRequest(`${log.url}/log`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '[tester] - from a program' });
    assert.equal(program.status, 202, JSON.stringify(program.body));
    // Same origin, as the log viewer's own page would send it.
    const own = await rawRequest(`${log.url}/log`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: log.url, 'sec-fetch-site': 'same-origin' },
      body: '[tester] - from its own page',
    });
    assert.equal(own.status, 202, JSON.stringify(own.body));
    const { body } = await getJson(`${log.url}/logs?limit=1000`);
    const messages = (body.entries as { message: string }[]).map((e) => e.message);
    assert.ok(messages.includes('from a program') && messages.includes('from its own page'), messages.join(' | '));
    assert.deepEqual(
      messages.filter((m) => m.includes('forged')),
      [],
    );
  });
});

describe('the teacher portal', () => {
  test('a grade form with Origin: null or from another origin is refused as JSON, and no grade is added', async () => {
    const before = await allGrades(grades.url);
    const cases = { ...ATTACKS, SAME_SITE_OTHER_PORT: { origin: 'http://127.0.0.1:1', 'sec-fetch-site': 'same-site' } };
    for (const [name, headers] of Object.entries(cases)) {
      const answer = await rawRequest(`${portal.url}/students/1/grades`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ title: `forged ${name}`, type: 'Quiz', score: '1' }).toString(),
      });
      assertCrossSite(answer, name);
      assert.match(String(answer.headers['content-type']), /application\/json/, name);
    }
    assert.deepEqual(await allGrades(grades.url), before);
  });

  test("the portal's own form (same origin) still adds the grade", async () => {
    const answer = await rawRequest(`${portal.url}/students/2/grades`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: portal.url, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ title: 'Own form', type: 'Quiz', score: '70' }).toString(),
    });
    assert.equal(answer.status, 303, JSON.stringify(answer.body));
    assert.ok((await allGrades(grades.url)).some((g) => g.studentId === 2 && g.title === 'Own form'));
    // An old browser: no Sec-Fetch-Site, Origin of the portal itself.
    const old = await rawRequest(`${portal.url}/students/2/grades`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: portal.url },
      body: new URLSearchParams({ title: 'Old browser', type: 'Quiz', score: '71' }).toString(),
    });
    assert.equal(old.status, 303);
  });
});

describe('the registry', () => {
  test('registrations and deregistrations from another site are refused; programs still register', async () => {
    const registration = JSON.stringify({ serviceName: 'forged', serviceURL: 'http://127.0.0.1:9/', requiredServices: [] });
    for (const [name, headers] of Object.entries(ATTACKS)) {
      // text/plain as a form or no-cors fetch can send it; application/json as a program would.
      for (const type of ['application/json', 'text/plain']) {
        const answer = await rawRequest(`${registry.url}/services`, { method: 'POST', headers: { 'content-type': type, ...headers }, body: registration });
        assertCrossSite(answer, `${name} ${type}`);
      }
    }
    const { body } = await getJson(`${registry.url}/services?name=grades`);
    const victim = body.instances[0] as { instanceId: string; serviceURL: string };
    for (const [name, headers] of Object.entries(ATTACKS)) {
      assertCrossSite(await rawRequest(`${registry.url}/services/${victim.instanceId}`, { method: 'DELETE', headers }), `DELETE by id, ${name}`);
      assertCrossSite(
        await rawRequest(`${registry.url}/services`, { method: 'DELETE', headers: { 'content-type': 'text/plain', ...headers }, body: victim.serviceURL }),
        `DELETE by URL, ${name}`,
      );
    }
    const listed = (await getJson(`${registry.url}/services`)).body.instances as { serviceName: string; instanceId: string }[];
    assert.ok(listed.some((i) => i.instanceId === victim.instanceId), 'grades is still registered');
    assert.ok(!listed.some((i) => i.serviceName === 'forged'));
  });
});

describe('the image frontend', () => {
  test('POST /submitTask from another site is refused and no task is created; from a program it is', async (t) => {
    const storage = await startStorageProc(registry.url);
    const master = await startMasterProc(registry.url);
    const frontend = await startFrontendProc(registry.url);
    t.after(() => stopAll(frontend, master, storage));
    await waitForProviders(frontend, 'imagemaster');
    const { png } = rgbaImage(8, 8);
    const upload = (headers: Record<string, string>) => {
      const form = new FormData();
      form.append('uploadfile', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
      return fetch(`${frontend.url}/submitTask`, { method: 'POST', body: form, headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(20_000) });
    };
    const taskCount = async () => Object.values((await getJson(`${master.url}/tasks`)).body.counts as Record<string, number>).reduce((a, b) => a + b, 0);
    for (const [name, headers] of Object.entries(ATTACKS)) {
      const res = await upload(headers);
      assertCrossSite({ status: res.status, body: await res.json() }, name);
    }
    assert.equal(await taskCount(), 0);
    const res = await upload({});
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(await taskCount(), 1);
  });
});
