/**
 * Grades on PostgreSQL (GRADES_STORE=postgres): several grades processes on one database share the students and
 * grades; they migrate and seed once however they start; PostgreSQL away means 503 with Retry-After, and they
 * recover by themselves; every 201 survives a crash of the database; bad input answers as on SQLite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { getJson, startRegistry, tempDir, waitFor, type Proc } from './helpers.ts';
import { allGrades, startGrades, startPortal, waitForProviders } from './fixtures/grades.ts';
import { skipUnlessEngine, startPostgres, type Postgres } from '../harness/postgres.ts';
import { SEED_STUDENTS } from '../grades/seed.ts';

const SEEDED_GRADES = SEED_STUDENTS.reduce((n, s) => n + s.grades.length, 0);

function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return getJson(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function onPostgres(registryUrl: string, databaseUrl: string): Promise<Proc> {
  return startGrades(registryUrl, tempDir('grades-pg-unused-'), { GRADES_STORE: 'postgres', DATABASE_URL: databaseUrl });
}

describe('grades on PostgreSQL', { skip: skipUnlessEngine('postgres') }, () => {
  let pg: Postgres;
  let registry: Proc;
  let a: Proc;
  let b: Proc;
  let portal: Proc;
  let databaseUrl: string;

  before(async () => {
    [pg, registry] = await Promise.all([startPostgres(), startRegistry()]);
    databaseUrl = await pg.createDatabase('grades_shared');
    // Both at once on an empty database: one migrates and seeds under the advisory lock, the other waits for it.
    [a, b] = await Promise.all([onPostgres(registry.url, databaseUrl), onPostgres(registry.url, databaseUrl)]);
    portal = await startPortal(registry.url);
  });
  after(async () => {
    await portal?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await registry?.stop();
    await pg?.stop();
  });

  test('two instances starting at once on an empty database migrate and seed it once', async () => {
    for (const proc of [a, b]) {
      const { status, body } = await getJson(`${proc.url}/students`);
      assert.equal(status, 200);
      assert.deepEqual(body.map((s: any) => `${s.firstName} ${s.lastName}`), SEED_STUDENTS.map((s) => `${s.firstName} ${s.lastName}`));
    }
    assert.equal(pg.sql('SELECT count(*) FROM grades.grades', 'grades_shared').trim(), String(SEEDED_GRADES));
    assert.equal(pg.sql('SELECT count(*) FROM grades.students', 'grades_shared').trim(), String(SEED_STUDENTS.length));
    assert.equal(pg.sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM grades.schema_migrations", 'grades_shared').trim(), '1,2');
    const migrated = [a, b].filter((proc) => /grades database migrated to version 2/.test(proc.output()));
    assert.equal(migrated.length, 1, 'exactly one instance applied the migrations');
  });

  test('a grade added through one instance is read through the other at once', async () => {
    for (const [writer, reader] of [[a, b], [b, a]] as const) {
      const added = await postJson(`${writer.url}/students/3/grades`, { title: `Through ${writer.url}`, type: 'Test', score: 81.5 });
      assert.equal(added.status, 201);
      const student = (await getJson(`${reader.url}/students/3`)).body;
      assert.deepEqual(student.grades.at(-1), added.body, 'the other instance reads it on the very next request');
      const listed = (await getJson(`${reader.url}/students`)).body.find((s: any) => s.id === 3);
      assert.deepEqual(listed, student);
      const scores = student.grades.map((g: any) => g.score);
      assert.ok(Math.abs(student.average - scores.reduce((x: number, y: number) => x + y, 0) / scores.length) < 1e-9);
    }
    const ids = (await allGrades(a.url)).map((g: any) => g.id);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique across instances');
  });

  test('an update or a delete through one instance is read through the other at once', async () => {
    const added = await postJson(`${a.url}/students/5/grades`, { title: 'Draft', type: 'Quiz', score: 10 });
    assert.equal(added.status, 201);
    const route = `/students/5/grades/${added.body.id}`;
    const updated = await getJson(`${b.url}${route}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Final', type: 'Test', score: 95 }) });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.body, { ...added.body, title: 'Final', type: 'Test', score: 95 });
    assert.deepEqual((await getJson(`${a.url}/students/5`)).body.grades.at(-1), updated.body);
    const deleted = await fetch(`${a.url}${route}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
    assert.equal(deleted.status, 204);
    assert.equal((await getJson(`${b.url}/students/5`)).body.grades.some((g: any) => g.id === added.body.id), false);
    const again = await getJson(`${b.url}${route}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'grade_not_found');
  });

  test('the portal works in front of both instances', async () => {
    await waitForProviders(portal, 'grades', [a.url, b.url]);
      const form = new URLSearchParams({ title: 'From the portal', type: 'Homework', score: '64' }).toString();
    const res = await fetch(`${portal.url}/students/4/grades`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
      signal: AbortSignal.timeout(15_000),
    });
    assert.equal(res.status, 303);
    for (const proc of [a, b]) {
      assert.equal((await getJson(`${proc.url}/students/4`)).body.grades.at(-1).title, 'From the portal');
    }
    const listPage = await fetch(`${portal.url}/students`, { signal: AbortSignal.timeout(15_000) });
    assert.equal(listPage.status, 200);
    assert.match(await listPage.text(), /Louie Easton/);
  });

  test('PostgreSQL down: 503 with Retry-After in the JSON shape; every 201 survives the crash; both recover by themselves', async () => {
    // A flood through both instances while the database is SIGKILLed: every acknowledged grade must come back.
    const acknowledged: number[] = [];
    const refusals = new Map<string, { status: number; retryAfter: string | null; body: any }>();
    let flooding = true;
    const flood = async (proc: Proc, lane: number) => {
      for (let i = 0; flooding; i++) {
        try {
          const answer = await postJson(`${proc.url}/students/1/grades`, { title: `flood ${lane}-${i}`, type: 'Quiz', score: i % 101 });
          if (answer.status === 201) acknowledged.push(answer.body.id);
          else refusals.set(`${answer.status} ${answer.body?.error?.code}`, { status: answer.status, retryAfter: answer.headers.get('retry-after'), body: answer.body });
        } catch {
          // a connection that broke mid-answer is no acknowledgement
        }
      }
    };
    const lanes = [flood(a, 0), flood(b, 1), flood(a, 2), flood(b, 3)];
    await waitFor(() => acknowledged.length >= 200, '200 acknowledged grades before the crash', 60_000);
    await pg.kill('SIGKILL');
    const ackedBeforeCrash = acknowledged.length;

    for (const proc of [a, b]) {
      const read = (await waitFor(async () => {
        const answer = await getJson(`${proc.url}/students`);
        return answer.status === 503 ? answer : undefined;
      }, `GET /students at ${proc.url} to answer 503`, 20_000))!;
      assert.equal(read.body.error.code, 'store_unavailable');
      assert.match(read.body.error.message, /grades database is unavailable/);
      assert.ok(!read.body.error.message.includes('    at '), 'no stack trace');
      assert.match(read.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    }
    const portalPage = await fetch(`${portal.url}/students`, { signal: AbortSignal.timeout(15_000) });
    assert.equal(portalPage.status, 503, 'the portal says the database is away');
    assert.ok(portalPage.headers.get('retry-after'));
    assert.match(await portalPage.text(), /The grades database is not available/);
    await waitFor(() => refusals.has('503 store_unavailable'), 'a refused write during the outage');
    const refused = refusals.get('503 store_unavailable')!;
    assert.match(refused.retryAfter ?? '', /^[1-9][0-9]*$/);
    assert.deepEqual([...refusals.keys()], ['503 store_unavailable'], 'the only refusal is a 503');

    await pg.restart();
    const countAfterRestart = acknowledged.length;
    await waitFor(() => acknowledged.length >= countAfterRestart + 50, 'writes to succeed again after the restart', 30_000);
    flooding = false;
    await Promise.all(lanes);

    for (const proc of [a, b]) assert.equal((await getJson(`${proc.url}/students/1`)).status, 200, `${proc.url} recovered`);
    assert.equal((await fetch(`${portal.url}/students/1`, { signal: AbortSignal.timeout(15_000) })).status, 200, 'the portal recovered');
    const stored = new Set((await getJson(`${a.url}/students/1`)).body.grades.map((g: any) => g.id));
    const lost = acknowledged.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `every acknowledged grade is stored (${acknowledged.length} acknowledged, ${ackedBeforeCrash} before the crash)`);
  });
});

describe('grades: bad input answers alike on SQLite and PostgreSQL', { skip: skipUnlessEngine('postgres') }, () => {
  let pg: Postgres;
  let registry: Proc;
  let onSqlite: Proc;
  let onPg: Proc;

  before(async () => {
    [pg, registry] = await Promise.all([startPostgres(), startRegistry()]);
    const url = await pg.createDatabase('grades_input');
    [onSqlite, onPg] = await Promise.all([startGrades(registry.url, path.join(tempDir('grades-sqlite-'), 'grades')), onPostgres(registry.url, url)]);
  });
  after(async () => {
    await Promise.all([onSqlite?.stop(), onPg?.stop()]);
    await registry?.stop();
    await pg?.stop();
  });

  test('the same status, code and message for every bad request, and nothing is written', async () => {
    const cases: { route: string; method?: string; body?: unknown; headers?: Record<string, string> }[] = [
      { route: '/students/1/grades', body: { title: 'x', type: 'Exam', score: 50 } },
      { route: '/students/1/grades', body: { title: 'x', type: 'Quiz', score: 100.5 } },
      { route: '/students/1/grades', body: { title: 'x', type: 'Quiz', score: '90' } },
      { route: '/students/1/grades', body: { type: 'Quiz', score: 50 } },
      { route: '/students/1/grades', body: { title: 'x'.repeat(201), type: 'Quiz', score: 50 } },
      { route: '/students/1/grades', body: '{"title": "x", "type": "Quiz", "score": 5' },
      { route: '/students/1/grades', body: { title: 'x', type: 'Quiz', score: 50, padding: 'p'.repeat(64 * 1024) } },
      { route: '/students/77/grades', body: { title: 'x', type: 'Quiz', score: 5 } },
      { route: '/students/2147483648/grades', body: { title: 'x', type: 'Quiz', score: 5 } },
      { route: '/students/x1/grades', body: { title: 'x', type: 'Quiz', score: 5 } },
      { route: '/students/999', method: 'GET' },
      { route: '/students/2147483647', method: 'GET' },
      { route: '/students/1', method: 'DELETE' },
      { route: '/students/1/grades/1', method: 'PUT', body: { title: 'x', type: 'Quiz', score: 101 } },
      { route: '/students/1/grades/1', method: 'PUT', body: { title: '', type: 'Quiz', score: 1 } },
      { route: '/students/1/grades/999999', method: 'PUT', body: { title: 'x', type: 'Quiz', score: 1 } },
      { route: '/students/2/grades/1', method: 'PUT', body: { title: 'x', type: 'Quiz', score: 1 } },
      { route: '/students/77/grades/1', method: 'PUT', body: { title: 'x', type: 'Quiz', score: 1 } },
      { route: '/students/1/grades/0x1', method: 'PUT', body: { title: 'x', type: 'Quiz', score: 1 } },
      { route: '/students/2/grades/1', method: 'DELETE' },
      { route: '/students/1/grades/999999', method: 'DELETE' },
      { route: '/students/1/grades/1', method: 'POST', body: { title: 'x', type: 'Quiz', score: 1 } },
    ];
    const before = await Promise.all([allGrades(onSqlite.url), allGrades(onPg.url)]);
    for (const c of cases) {
      const answers = await Promise.all(
        [onSqlite, onPg].map(async (proc) => {
          const method = c.method ?? 'POST';
          const { status, body } = await getJson(`${proc.url}${c.route}`, {
            method,
            headers: { 'content-type': 'application/json', ...c.headers },
            body: method === 'GET' ? undefined : typeof c.body === 'string' ? c.body : JSON.stringify(c.body ?? {}),
          });
          return { status, code: body?.error?.code, message: body?.error?.message };
        }),
      );
      const [sqlite, postgres] = answers;
      assert.ok(sqlite!.status >= 400 && sqlite!.status < 500, `${c.method ?? 'POST'} ${c.route}: a client error (${sqlite!.status})`);
      assert.equal(typeof sqlite!.message, 'string');
      assert.deepEqual(postgres, sqlite, `${c.method ?? 'POST'} ${c.route}: the same answer on both stores`);
    }
    assert.deepEqual(await Promise.all([allGrades(onSqlite.url), allGrades(onPg.url)]), before, 'nothing was written');
  });
});
