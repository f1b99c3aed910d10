import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir } from '../test/helpers.ts';
import { postgresForSuite, skipUnlessEngine, startPostgres, type Postgres } from '../harness/postgres.ts';
import type { GradeStore } from './store.ts';
import { SqliteGradeStore } from './sqliteStore.ts';
import { PostgresGradeStore } from './postgresStore.ts';
import { SEED_STUDENTS } from './seed.ts';

/** One kind of store: where a fresh, empty one lives, and how to open it there. */
interface Backend {
  name: string;
  skip: string | false;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new, empty place for a store (a folder, a database). */
  freshLocation(): Promise<string>;
  open(location: string): Promise<GradeStore>;
}

const postgres = postgresForSuite('grades_store');

const backends: Backend[] = [
  {
    name: 'SQLite',
    skip: false,
    async setup() {},
    async teardown() {},
    async freshLocation() {
      return path.join(tempDir('grades-store-'), 'data');
    },
    async open(dir) {
      return SqliteGradeStore.open(dir);
    },
  },
  {
    name: 'PostgreSQL',
    skip: postgres.skip,
    setup: postgres.setup,
    teardown: postgres.teardown,
    freshLocation: postgres.freshLocation,
    async open(url) {
      return PostgresGradeStore.open({ url, startTimeoutMs: 5000 });
    },
  },
];

const seededGrades = SEED_STUDENTS.reduce((n, s) => n + s.grades.length, 0);

for (const backend of backends) {
  describe(`grades store on ${backend.name}`, { skip: backend.skip }, () => {
    before(() => backend.setup());
    after(() => backend.teardown());

    test('the first open seeds the reference students; later opens do not seed again', async () => {
      const location = await backend.freshLocation();
      const first = await backend.open(location);
      assert.deepEqual(
        (await first.listStudents()).map((s) => `${s.firstName} ${s.lastName}`),
        SEED_STUDENTS.map((s) => `${s.firstName} ${s.lastName}`),
      );
      assert.equal(await first.countGrades(), seededGrades);
      const averill = await first.getStudent(1);
      assert.deepEqual(averill?.grades.map((g) => [g.title, g.type, g.score]), SEED_STUDENTS[0]!.grades.map((g) => [g.title, g.type, g.score]));
      await first.close();
      const again = await backend.open(location);
      assert.equal(await again.countGrades(), seededGrades);
      assert.equal((await again.listStudents()).length, SEED_STUDENTS.length);
      await again.close();
    });

    test('addGrade stores a grade and updates the average; an unknown student writes nothing', async () => {
      const store = await backend.open(await backend.freshLocation());
      try {
        const before = await store.countGrades();
        assert.equal(await store.addGrade(42, { title: 'x', type: 'Quiz', score: 1 }), undefined);
        assert.equal(await store.countGrades(), before);

        const grade = await store.addGrade(1, { title: 'Final', type: 'Test', score: 97.25 });
        assert.ok(grade);
        assert.deepEqual([grade.studentId, grade.title, grade.type, grade.score], [1, 'Final', 'Test', 97.25]);
        assert.equal(typeof grade.id, 'number');
        assert.ok(Math.abs(Date.parse(grade.createdAt) - Date.now()) < 60_000, `createdAt ${grade.createdAt} is an ISO time of now`);
        const student = await store.getStudent(1);
        assert.deepEqual(student?.grades.at(-1), grade);
        assert.equal(student?.average, (85 + 94 + 88 + 97.25) / 4);
        assert.equal(await store.getStudent(999), undefined);
        const listed = (await store.listStudents()).find((s) => s.id === 1);
        assert.deepEqual(listed, student, 'the list and the single student agree');
      } finally {
        await store.close();
      }
    });

    test('updateGrade replaces title, type and score of a grade of that student only; deleteGrade removes it', async () => {
      const store = await backend.open(await backend.freshLocation());
      try {
        const grade = (await store.addGrade(2, { title: 'Draft', type: 'Quiz', score: 40 }))!;
        const updated = await store.updateGrade(2, grade.id, { title: 'Final', type: 'Test', score: 90 });
        assert.deepEqual(updated, { ...grade, title: 'Final', type: 'Test', score: 90 }, 'same id and createdAt');
        assert.deepEqual((await store.getStudent(2))?.grades.at(-1), updated);
        assert.equal(await store.updateGrade(3, grade.id, { title: 'x', type: 'Quiz', score: 1 }), undefined, "another student's grade");
        assert.equal(await store.updateGrade(2, 999_999, { title: 'x', type: 'Quiz', score: 1 }), undefined);
        await assert.rejects(store.updateGrade(2, grade.id, { title: 'x', type: 'Quiz', score: -1 }), /check constraint/i);
        assert.equal(await store.deleteGrade(3, grade.id), false, "another student's grade");
        const count = await store.countGrades();
        assert.equal(await store.deleteGrade(2, grade.id), true);
        assert.equal(await store.deleteGrade(2, grade.id), false, 'already gone');
        assert.equal(await store.countGrades(), count - 1);
        assert.equal((await store.getStudent(2))?.grades.some((g) => g.id === grade.id), false);
        assert.equal((await store.getStudent(2))?.average, (100 + 100 + 88) / 3);
      } finally {
        await store.close();
      }
    });

    test('the database refuses what the API would refuse (a second line of defence)', async () => {
      const store = await backend.open(await backend.freshLocation());
      try {
        const before = await store.countGrades();
        await assert.rejects(store.addGrade(1, { title: 'x', type: 'Exam' as never, score: 5 }), /check constraint/i);
        await assert.rejects(store.addGrade(1, { title: 'x', type: 'Quiz', score: 101 }), /check constraint/i);
        assert.equal(await store.countGrades(), before);
      } finally {
        await store.close();
      }
    });

    test("two stores on one database (two instances) see each other's writes at once", async () => {
      const location = await backend.freshLocation();
      const a = await backend.open(location);
      const b = await backend.open(location);
      try {
        const grade = await a.addGrade(2, { title: 'Shared', type: 'Homework', score: 50 });
        assert.equal((await b.getStudent(2))?.grades.at(-1)?.id, grade?.id);
        const back = await b.addGrade(2, { title: 'Back', type: 'Quiz', score: 60 });
        assert.deepEqual((await a.getStudent(2))?.grades.slice(-2).map((g) => g.id), [grade?.id, back?.id]);
        assert.equal((await b.listStudents()).length, SEED_STUDENTS.length, 'seeded once');
      } finally {
        await a.close();
        await b.close();
      }
    });

    test('four stores opening at once on an empty database seed it once', async () => {
      const location = await backend.freshLocation();
      const stores = await Promise.all([1, 2, 3, 4].map(() => backend.open(location)));
      try {
        for (const store of stores) {
          assert.equal(await store.countGrades(), seededGrades);
          assert.equal((await store.listStudents()).length, SEED_STUDENTS.length);
        }
      } finally {
        for (const store of stores) await store.close();
      }
    });
  });
}

describe('grades store on PostgreSQL: schema and start-up', { skip: skipUnlessEngine('postgres') }, () => {
  let server: Postgres;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.stop());

  test('migrations are versioned in grades.schema_migrations, and a database from a newer version is refused', async () => {
    const url = await server.createDatabase('grades_schema');
    await (await PostgresGradeStore.open({ url })).close();
    assert.equal(server.sql('SELECT string_agg(version::text, \',\' ORDER BY version) FROM grades.schema_migrations', 'grades_schema').trim(), '1,2');
    server.sql("INSERT INTO grades.schema_migrations (version, description) VALUES (99, 'from the future')", 'grades_schema');
    await assert.rejects(PostgresGradeStore.open({ url }), /schema version 99, newer than this version knows \(2\)/);
  });

  test('an unreachable database fails the start after the start timeout, with a clear message and no password', async () => {
    server.sql("CREATE ROLE someone LOGIN PASSWORD 'hunter2'");
    const started = Date.now();
    await assert.rejects(
      PostgresGradeStore.open({ url: `postgres://someone:hunter2@127.0.0.1:1/grades`, startTimeoutMs: 800, connectTimeoutMs: 300 }),
      (err: Error) => {
        assert.match(err.message, /^grades database at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/grades: /);
        assert.ok(!err.message.includes('hunter2'));
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000, 'gave up after about the start timeout');
  });
});
