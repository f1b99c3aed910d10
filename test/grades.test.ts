import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { getJson, startRegistry, tempDir, type Proc } from './helpers.ts';
import { allGrades, startGrades, waitForInstances } from './fixtures/grades.ts';

const SEEDED = ['Averill Simen', 'Marge Garrard', 'Sydnie Barber', 'Louie Easton', 'Kylee Attwood'];

function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return getJson(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('grades service', () => {
  let registry: Proc;
  let grades: Proc;
  const dataDir = path.join(tempDir('grades-'), 'grades');

  before(async () => {
    registry = await startRegistry();
    grades = await startGrades(registry.url, dataDir);
  });
  after(async () => {
    await grades?.stop();
    await registry?.stop();
  });

  test('registers as "grades" with the registry', async () => {
    await waitForInstances(registry.url, 'grades', [grades.url]);
    const { body } = await getJson(`${registry.url}/services?name=grades`);
    assert.deepEqual(body.instances[0].requiredServices, ['log']);
  });

  test('the first start seeds the five students of the reference data set', async () => {
    const { status, body } = await getJson(`${grades.url}/students`);
    assert.equal(status, 200);
    assert.deepEqual(
      body.slice(0, 5).map((s: any) => `${s.firstName} ${s.lastName}`),
      SEEDED,
    );
    const averill = body[0];
    assert.equal(averill.id, 1);
    assert.deepEqual(
      averill.grades.slice(0, 3).map((g: any) => [g.title, g.type, g.score]),
      [
        ['Quiz 1', 'Quiz', 85],
        ['Week 1 Homework', 'Homework', 94],
        ['Quiz 2', 'Quiz', 88],
      ],
    );
    for (const student of body) {
      const mean = student.grades.reduce((sum: number, g: any) => sum + g.score, 0) / student.grades.length;
      assert.ok(Math.abs(student.average - mean) < 1e-9, `average of ${student.firstName}`);
    }
  });

  test('GET /students/:id returns one student, or 404 for an unknown or non-integer id', async () => {
    const { status, body } = await getJson(`${grades.url}/students/4`);
    assert.equal(status, 200);
    assert.equal(body.firstName, 'Louie');
    assert.equal(body.lastName, 'Easton');
    assert.ok(Array.isArray(body.grades));
    for (const id of ['999', '0', 'abc', '1.5', '-1', '01', '1e2', '0x1', '99999999999999999999', '%20']) {
      const answer = await getJson(`${grades.url}/students/${id}`);
      assert.equal(answer.status, 404, `id ${id}`);
      assert.equal(answer.body.error.code, 'student_not_found', `id ${id}`);
      assert.equal(typeof answer.body.error.message, 'string');
    }
  });

  test('POST /students/:id/grades stores a grade and answers 201 with it', async () => {
    const before = (await getJson(`${grades.url}/students/2`)).body;
    const { status, body } = await postJson(`${grades.url}/students/2/grades`, { title: 'Midterm', type: 'Test', score: 72.5 });
    assert.equal(status, 201);
    assert.equal(body.studentId, 2);
    assert.equal(body.title, 'Midterm');
    assert.equal(body.type, 'Test');
    assert.equal(body.score, 72.5);
    assert.equal(typeof body.id, 'number');
    assert.ok(!Number.isNaN(Date.parse(body.createdAt)));

    const afterAdd = (await getJson(`${grades.url}/students/2`)).body;
    assert.equal(afterAdd.grades.length, before.grades.length + 1);
    assert.deepEqual(afterAdd.grades.at(-1), body);
    const scores = afterAdd.grades.map((g: any) => g.score);
    assert.ok(Math.abs(afterAdd.average - scores.reduce((a: number, b: number) => a + b, 0) / scores.length) < 1e-9);
  });

  test("the reference Go portal's {Title, Type, Score} works (field names matched case-insensitively)", async () => {
    const { status, body } = await postJson(`${grades.url}/students/3/grades`, { Title: 'Go quiz', Type: 'Quiz', Score: 91 });
    assert.equal(status, 201);
    assert.deepEqual([body.title, body.type, body.score], ['Go quiz', 'Quiz', 91]);
    const lower = await postJson(`${grades.url}/students/3/grades`, { TITLE: 'Shouty', type: 'homework', sCoRe: 0 });
    assert.equal(lower.status, 201);
    assert.equal(lower.body.type, 'Homework');
    assert.equal(lower.body.score, 0);
  });

  test('invalid input gets a 400 or 413 with the JSON error shape, and nothing is written', async () => {
    const url = `${grades.url}/students/1/grades`;
    const cases: { name: string; body: unknown; status: number; code: string; mentions?: string; headers?: Record<string, string> }[] = [
      { name: 'unknown type', body: { title: 'x', type: 'Exam', score: 50 }, status: 400, code: 'invalid_grade', mentions: 'type' },
      { name: 'score above 100', body: { title: 'x', type: 'Quiz', score: 100.5 }, status: 400, code: 'invalid_grade', mentions: 'score' },
      { name: 'negative score', body: { title: 'x', type: 'Quiz', score: -1 }, status: 400, code: 'invalid_grade', mentions: 'score' },
      { name: 'score as a string', body: { title: 'x', type: 'Quiz', score: '90' }, status: 400, code: 'invalid_grade', mentions: 'score' },
      { name: 'missing score', body: { title: 'x', type: 'Quiz' }, status: 400, code: 'invalid_grade', mentions: 'score' },
      { name: 'missing title', body: { type: 'Quiz', score: 50 }, status: 400, code: 'invalid_grade', mentions: 'title' },
      { name: 'blank title', body: { title: '   ', type: 'Quiz', score: 50 }, status: 400, code: 'invalid_grade', mentions: 'title' },
      { name: 'title too long', body: { title: 'x'.repeat(201), type: 'Quiz', score: 50 }, status: 400, code: 'invalid_grade', mentions: 'title' },
      { name: 'an array', body: [{ title: 'x', type: 'Quiz', score: 50 }], status: 400, code: 'invalid_grade' },
      { name: 'malformed JSON', body: '{"title": "x", "type": "Quiz", "score": 5', status: 400, code: 'malformed_json' },
      { name: 'empty body', body: '', status: 400, code: 'invalid_grade' },
      {
        name: 'body too large',
        body: { title: 'x', type: 'Quiz', score: 50, padding: 'p'.repeat(64 * 1024) },
        status: 413,
        code: 'payload_too_large',
      },
      {
        name: 'plain text',
        body: 'title=x&type=Quiz&score=5',
        status: 400,
        code: 'invalid_grade',
        headers: { 'content-type': 'text/plain' },
      },
    ];
    const before = await allGrades(grades.url);
    for (const c of cases) {
      const { status, body } = await postJson(url, c.body, c.headers);
      assert.equal(status, c.status, `${c.name}: status`);
      assert.equal(body.error?.code, c.code, `${c.name}: code`);
      assert.equal(typeof body.error.message, 'string', `${c.name}: message`);
      assert.ok(!body.error.message.includes('    at '), `${c.name}: no stack trace`);
      if (c.mentions) assert.match(body.error.message, new RegExp(`\\b${c.mentions}\\b`), `${c.name}: names the field`);
    }
    const unknownStudent = await postJson(`${grades.url}/students/77/grades`, { title: 'x', type: 'Quiz', score: 5 });
    assert.equal(unknownStudent.status, 404);
    assert.equal(unknownStudent.body.error.code, 'student_not_found');
    const badId = await postJson(`${grades.url}/students/x1/grades`, { title: 'x', type: 'Quiz', score: 5 });
    assert.equal(badId.status, 404);

    assert.deepEqual(await allGrades(grades.url), before, 'nothing was written');
  });

  test('PUT /students/:id/grades/:gradeId replaces a grade (200); DELETE removes it (204); unknown ones are 404', async () => {
    const added = (await postJson(`${grades.url}/students/4/grades`, { title: 'Draft', type: 'Quiz', score: 10 })).body;
    const route = `${grades.url}/students/4/grades/${added.id}`;
    const put = (body: unknown) => getJson(route, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const updated = await put({ Title: 'Final', type: 'test', score: 88 });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.body, { ...added, title: 'Final', type: 'Test', score: 88 });
    assert.deepEqual((await getJson(`${grades.url}/students/4`)).body.grades.at(-1), updated.body);
    const invalid = await put({ title: 'x', type: 'Quiz', score: 101 });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.error.code, 'invalid_grade');
    const elsewhere = await getJson(`${grades.url}/students/3/grades/${added.id}`, { method: 'DELETE' });
    assert.equal(elsewhere.status, 404, "another student's grade");
    assert.equal(elsewhere.body.error.code, 'grade_not_found');
    const unknownStudent = await getJson(`${grades.url}/students/77/grades/${added.id}`, { method: 'DELETE' });
    assert.equal(unknownStudent.body.error.code, 'student_not_found');
    const deleted = await fetch(route, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
    assert.equal(deleted.status, 204);
    assert.equal((await getJson(`${grades.url}/students/4`)).body.grades.some((g: any) => g.id === added.id), false);
    assert.equal((await put({ title: 'x', type: 'Quiz', score: 1 })).status, 404, 'a deleted grade is gone');
  });

  test('only the right methods are accepted (405 with Allow)', async () => {
    const before = await allGrades(grades.url);
    const cases: [string, string, string][] = [
      ['GET', '/students/1/grades', 'POST'], // the reference added a grade on a GET
      ['PUT', '/students/1/grades', 'POST'],
      ['POST', '/students', 'GET'],
      ['DELETE', '/students', 'GET'],
      ['PUT', '/students/1', 'GET'],
      ['DELETE', '/students/1', 'GET'],
      ['PATCH', '/students/1', 'GET'],
      ['GET', '/students/1/grades/1', 'PUT, DELETE'],
      ['POST', '/students/1/grades/1', 'PUT, DELETE'],
    ];
    for (const [method, route, allow] of cases) {
      const { status, body, headers } = await getJson(`${grades.url}${route}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'GET' ? undefined : JSON.stringify({ title: 'x', type: 'Quiz', score: 1 }),
      });
      assert.equal(status, 405, `${method} ${route}`);
      assert.equal(body.error.code, 'method_not_allowed');
      assert.equal(headers.get('allow'), allow);
    }
    assert.deepEqual(await allGrades(grades.url), before, 'nothing was written');
  });

  test('grades persist across a restart (SIGTERM and SIGKILL), and the seed is not loaded twice', async () => {
    const first = await postJson(`${grades.url}/students/5/grades`, { title: 'Before restart', type: 'Homework', score: 66 });
    assert.equal(first.status, 201);
    const beforeStop = await allGrades(grades.url);

    assert.equal(await grades.stop('SIGTERM'), 0);
    grades = await startGrades(registry.url, dataDir);
    assert.deepEqual(await allGrades(grades.url), beforeStop);

    const second = await postJson(`${grades.url}/students/5/grades`, { title: 'Before crash', type: 'Test', score: 99 });
    assert.equal(second.status, 201);
    await grades.stop('SIGKILL');
    grades = await startGrades(registry.url, dataDir);

    const { body } = await getJson(`${grades.url}/students`);
    assert.equal(body.length, 5, 'still five students');
    const kylee = body.find((s: any) => s.id === 5);
    assert.deepEqual(
      kylee.grades.slice(-2).map((g: any) => g.title),
      ['Before restart', 'Before crash'],
    );
    assert.equal((await allGrades(grades.url)).length, beforeStop.length + 1);
  });
});
