import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { getJson, startRegistry, tempDir, waitFor, type Proc } from './helpers.ts';
import { allGrades, metricValue, startGrades, startPortal, waitForProviders } from './fixtures/grades.ts';

interface Page {
  status: number;
  text: string;
  headers: Headers;
}

async function page(url: string, init: RequestInit = {}): Promise<Page> {
  const res = await fetch(url, { redirect: 'manual', ...init, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Page> {
  return page(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** The average shown in a student's row of the list page. */
function listedAverage(html: string, studentId: number): string | undefined {
  const row = new RegExp(`<tr data-student-id="${studentId}">[\\s\\S]*?<td class="num student-average">([^<]*)</td>`).exec(html);
  return row?.[1];
}

describe('teacher portal pages', () => {
  let registry: Proc;
  let grades: Proc;
  let portal: Proc;

  before(async () => {
    registry = await startRegistry();
    grades = await startGrades(registry.url, path.join(tempDir('portal-grades-'), 'grades'));
    portal = await startPortal(registry.url);
    await waitForProviders(portal, 'grades', [grades.url]);
  });
  after(async () => {
    await portal?.stop();
    await grades?.stop();
    await registry?.stop();
  });

  test('/ leads to /students', async () => {
    const answer = await page(`${portal.url}/`);
    assert.equal(answer.status, 302);
    assert.equal(answer.headers.get('location'), '/students');
  });

  test('/students lists the students with their averages', async () => {
    const answer = await page(`${portal.url}/students`);
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /text\/html/);
    for (const name of ['Averill Simen', 'Marge Garrard', 'Sydnie Barber', 'Louie Easton', 'Kylee Attwood']) {
      assert.ok(answer.text.includes(name), name);
    }
    assert.equal(listedAverage(answer.text, 1), '89.0');
    assert.equal(listedAverage(answer.text, 3), '47.3');
    assert.ok(answer.text.includes('href="/students/1"'));
  });

  test("/students/:id shows a student's grades and the add-a-grade form", async () => {
    const answer = await page(`${portal.url}/students/1`);
    assert.equal(answer.status, 200);
    assert.ok(answer.text.includes('<h1>Averill Simen</h1>'));
    for (const title of ['Quiz 1', 'Week 1 Homework', 'Quiz 2']) assert.ok(answer.text.includes(`<td>${title}</td>`), title);
    assert.match(answer.text, /<p class="average" id="average">89\.0<\/p>/);
    assert.match(answer.text, /<form method="post" action="\/students\/1\/grades"/);
  });

  test('the form adds a grade (POST, then redirect to the page that shows it)', async () => {
    const answer = await postForm(`${portal.url}/students/4/grades`, { title: 'Final test', type: 'Test', score: '81' });
    assert.equal(answer.status, 303);
    const location = answer.headers.get('location') ?? '';
    assert.match(location, /^\/students\/4\?added=\d+$/);

    const shown = await page(`${portal.url}${location}`);
    assert.equal(shown.status, 200);
    assert.ok(shown.text.includes('<td>Final test</td>'));
    assert.ok(shown.text.includes('role="status"'), 'says the grade was added');
    // (88 + 93 + 84 + 81) / 4
    assert.match(shown.text, /id="average">86\.5</);

    const stored = (await getJson(`${grades.url}/students/4`)).body.grades.at(-1);
    assert.deepEqual([stored.title, stored.type, stored.score], ['Final test', 'Test', 81]);
    assert.equal(listedAverage((await page(`${portal.url}/students`)).text, 4), '86.5');
  });

  test('form errors are shown on the form, the values are kept, and nothing is written', async () => {
    const before = await allGrades(grades.url);
    const cases: { fields: Record<string, string>; errors: Record<string, RegExp> }[] = [
      { fields: { title: 'Lab', type: 'Quiz', score: '150' }, errors: { score: /between 0 and 100/ } },
      { fields: { title: 'Lab', type: 'Quiz', score: 'abc' }, errors: { score: /number/ } },
      { fields: { title: 'Lab', type: 'Quiz', score: '' }, errors: { score: /required/ } },
      { fields: { title: '', type: 'Quiz', score: '50' }, errors: { title: /required/ } },
      { fields: { title: 'Lab', type: 'Exam', score: '50' }, errors: { type: /Test, Homework, Quiz/ } },
      { fields: { title: '', type: 'Exam', score: '-3' }, errors: { title: /required/, type: /one of/, score: /between/ } },
      { fields: { type: 'Quiz' }, errors: { title: /required/, score: /required/ } },
    ];
    for (const { fields, errors } of cases) {
      const answer = await postForm(`${portal.url}/students/2/grades`, fields);
      const label = JSON.stringify(fields);
      assert.equal(answer.status, 400, label);
      assert.ok(answer.text.includes('<h1>Marge Garrard</h1>'), `${label}: the student page again`);
      for (const [name, pattern] of Object.entries(errors)) {
        const shown = new RegExp(`id="${name}-error">([^<]*)<`).exec(answer.text);
        assert.ok(shown, `${label}: error for ${name}`);
        assert.match(shown[1], pattern, `${label}: ${name}`);
      }
      if (fields.title) assert.ok(answer.text.includes(`name="title" value="${fields.title}"`), `${label}: title kept`);
      if (fields.score) assert.ok(answer.text.includes(`value="${fields.score}"`), `${label}: score kept`);
      if (fields.type === 'Quiz') assert.ok(answer.text.includes('<option value="Quiz" selected>'), `${label}: type kept`);
    }
    assert.deepEqual(await allGrades(grades.url), before, 'nothing was written');
  });

  test('everything shown is escaped: kept form values and stored titles', async () => {
    const before = await allGrades(grades.url);
    const evil = '"><script>alert(1)</script>';
    const rejected = await postForm(`${portal.url}/students/2/grades`, { title: evil, type: 'Quiz', score: '500' });
    assert.equal(rejected.status, 400);
    assert.ok(!rejected.text.includes('<script>alert(1)'));
    assert.ok(rejected.text.includes('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"'));
    assert.deepEqual(await allGrades(grades.url), before, 'nothing was written');

    const img = '<img src=x onerror=alert(1)> & co';
    const added = await postForm(`${portal.url}/students/2/grades`, { title: img, type: 'Homework', score: '70' });
    assert.equal(added.status, 303);
    const shown = await page(`${portal.url}${added.headers.get('location')}`);
    assert.ok(!shown.text.includes('<img'));
    assert.ok(shown.text.includes('<td>&lt;img src=x onerror=alert(1)&gt; &amp; co</td>'));
  });

  test('unknown students and pages get a 404 page', async () => {
    for (const route of ['/students/999', '/students/abc', '/students/1.5', '/nowhere']) {
      const answer = await page(`${portal.url}${route}`);
      assert.equal(answer.status, 404, route);
      assert.match(answer.headers.get('content-type') ?? '', /text\/html/, route);
    }
    const before = await allGrades(grades.url);
    const form = await postForm(`${portal.url}/students/999/grades`, { title: 'x', type: 'Quiz', score: '1' });
    assert.equal(form.status, 404);
    assert.deepEqual(await allGrades(grades.url), before);
  });

  test('wrong methods get a 405 page', async () => {
    for (const [method, route] of [
      ['DELETE', '/students'],
      ['POST', '/students'],
      ['PUT', '/students/1'],
      ['GET', '/students/1/grades'],
    ]) {
      const answer = await page(`${portal.url}${route}`, { method });
      assert.equal(answer.status, 405, `${method} ${route}`);
      assert.ok(answer.headers.get('allow'));
    }
  });

  test('a form posted from another site, or too large, is refused and nothing is written', async () => {
    const before = await allGrades(grades.url);
    const foreign = await postForm(`${portal.url}/students/1/grades`, { title: 'x', type: 'Quiz', score: '1' }, { origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    const huge = await postForm(`${portal.url}/students/1/grades`, { title: 'x'.repeat(64 * 1024), type: 'Quiz', score: '1' });
    assert.equal(huge.status, 413);
    assert.match(huge.text, /too large/);
    assert.deepEqual(await allGrades(grades.url), before);
  });
});

describe("the portal through grades' death and return", () => {
  let registry: Proc;
  let grades: Proc;
  let portal: Proc;
  const dataDir = path.join(tempDir('portal-death-'), 'grades');

  before(async () => {
    registry = await startRegistry();
    grades = await startGrades(registry.url, dataDir);
    portal = await startPortal(registry.url, { GRADES_TIMEOUT_MS: '1500' });
    await waitForProviders(portal, 'grades', [grades.url]);
  });
  after(async () => {
    grades?.child.kill('SIGCONT');
    await portal?.stop();
    await grades?.stop();
    await registry?.stop();
  });

  test('a grades instance that hangs (SIGSTOP) gets a 504 or 503 page, not a hung page', async () => {
    grades.child.kill('SIGSTOP');
    try {
      const started = Date.now();
      const answer = await page(`${portal.url}/students`);
      // 504 if the call timed out, 503 if the registry already took the silent instance down.
      assert.ok([503, 504].includes(answer.status), `status ${answer.status}`);
      assert.match(answer.text, /grades service/);
      assert.ok(Date.now() - started < 12_000, 'answered within a bound');
    } finally {
      grades.child.kill('SIGCONT');
    }
    await waitForProviders(portal, 'grades', [grades.url]);
    await waitFor(async () => (await page(`${portal.url}/students`)).status === 200, 'pages to work after SIGCONT', 30_000, 100);
  });

  test('a 503 page that explains while grades is gone, and working pages again when it is back', async () => {
    const added = await postForm(`${portal.url}/students/3/grades`, { title: 'Kept across the outage', type: 'Quiz', score: '90' });
    assert.equal(added.status, 303);

    await grades.stop('SIGKILL');
    // At once (before the registry has noticed) and after: never a crash, never a hang.
    const early = await page(`${portal.url}/students`);
    assert.equal(early.status, 503);
    assert.match(early.text, /grades service/);

    await waitForProviders(portal, 'grades', []);
    for (const route of ['/students', '/students/3']) {
      const answer = await page(`${portal.url}${route}`);
      assert.equal(answer.status, 503, route);
      assert.match(answer.headers.get('content-type') ?? '', /text\/html/);
      assert.ok(answer.text.includes('The grades service is not available'), route);
      assert.ok(answer.text.includes('No instance of the grades service is registered'), route);
      assert.ok(answer.headers.get('retry-after'));
      assert.match(answer.text, /<meta http-equiv="refresh" content="\d+">/);
    }
    const form = await postForm(`${portal.url}/students/3/grades`, { title: 'While away', type: 'Quiz', score: '10' });
    assert.equal(form.status, 503);
    assert.equal((await getJson(`${portal.url}/health`)).status, 200, 'the portal is still up');

    grades = await startGrades(registry.url, dataDir);
    const back = (await waitFor(
      async () => {
        const answer = await page(`${portal.url}/students/3`);
        return answer.status === 200 && answer;
      },
      'the student page to work again',
      30_000,
      100,
    )) as Page;
    assert.ok(back.text.includes('<td>Kept across the outage</td>'));
    assert.ok(!back.text.includes('While away'));
    assert.equal((await page(`${portal.url}/students`)).status, 200);
  });
});

describe('the portal with two grades instances', () => {
  let registry: Proc;
  let first: Proc;
  let second: Proc;
  let portal: Proc;

  before(async () => {
    registry = await startRegistry();
    // Two instances on one machine share one SQLite file (WAL): they serve the same students.
    const dataDir = path.join(tempDir('portal-two-'), 'grades');
    [first, second] = await Promise.all([startGrades(registry.url, dataDir), startGrades(registry.url, dataDir)]);
    portal = await startPortal(registry.url);
    await waitForProviders(portal, 'grades', [first.url, second.url]);
  });
  after(async () => {
    await portal?.stop();
    await first?.stop();
    await second?.stop();
    await registry?.stop();
  });

  test('requests are spread across both instances', async () => {
    const listed = async () => [await metricValue(first.url, 'grades_requests_total', 'route="list"'), await metricValue(second.url, 'grades_requests_total', 'route="list"')];
    const [a0, b0] = await listed();
    for (let i = 0; i < 20; i++) assert.equal((await page(`${portal.url}/students`)).status, 200);
    const [a1, b1] = await listed();
    assert.equal(a1 - a0 + (b1 - b0), 20, 'one grades call per page');
    assert.ok(a1 - a0 >= 5, `first instance served ${a1 - a0} of 20`);
    assert.ok(b1 - b0 >= 5, `second instance served ${b1 - b0} of 20`);
  });

  test("one instance dying doesn't fail a page", async () => {
    await first.stop('SIGKILL');
    for (let i = 0; i < 10; i++) {
      assert.equal((await page(`${portal.url}/students`)).status, 200, `list page ${i}`);
      assert.equal((await page(`${portal.url}/students/1`)).status, 200, `student page ${i}`);
    }
    const added = await postForm(`${portal.url}/students/1/grades`, { title: 'After failover', type: 'Quiz', score: '77' });
    assert.equal(added.status, 303);
    assert.ok((await page(`${portal.url}${added.headers.get('location')}`)).text.includes('<td>After failover</td>'));
    await waitForProviders(portal, 'grades', [second.url]);
    assert.equal((await page(`${portal.url}/students`)).status, 200);
  });
});
