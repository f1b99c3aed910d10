import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir } from '../test/helpers.ts';
import { GradeStore } from './store.ts';
import { SEED_STUDENTS } from './seed.ts';

test('the first open seeds the reference students; later opens do not seed again', () => {
  const dir = path.join(tempDir('grades-store-'), 'data');
  const first = GradeStore.open(dir);
  assert.deepEqual(
    first.listStudents().map((s) => `${s.firstName} ${s.lastName}`),
    SEED_STUDENTS.map((s) => `${s.firstName} ${s.lastName}`),
  );
  const seeded = first.countGrades();
  assert.equal(seeded, SEED_STUDENTS.reduce((n, s) => n + s.grades.length, 0));
  first.close();
  const again = GradeStore.open(dir);
  assert.equal(again.countGrades(), seeded);
  assert.equal(again.listStudents().length, SEED_STUDENTS.length);
  again.close();
});

test('addGrade stores a grade and updates the average; an unknown student writes nothing', () => {
  const store = GradeStore.open(path.join(tempDir('grades-store-'), 'data'));
  try {
    const before = store.countGrades();
    assert.equal(store.addGrade(42, { title: 'x', type: 'Quiz', score: 1 }), undefined);
    assert.equal(store.countGrades(), before);

    const grade = store.addGrade(1, { title: 'Final', type: 'Test', score: 97 });
    assert.ok(grade);
    assert.deepEqual([grade.studentId, grade.title, grade.type, grade.score], [1, 'Final', 'Test', 97]);
    const student = store.getStudent(1);
    assert.equal(student?.grades.at(-1)?.id, grade.id);
    assert.equal(student?.average, (85 + 94 + 88 + 97) / 4);
    assert.equal(store.getStudent(999), undefined);
  } finally {
    store.close();
  }
});

test('the database refuses what the API would refuse (a second line of defence)', () => {
  const store = GradeStore.open(path.join(tempDir('grades-store-'), 'data'));
  try {
    const before = store.countGrades();
    assert.throws(() => store.addGrade(1, { title: 'x', type: 'Exam' as never, score: 5 }), /CHECK constraint/);
    assert.throws(() => store.addGrade(1, { title: 'x', type: 'Quiz', score: 101 }), /CHECK constraint/);
    assert.equal(store.countGrades(), before);
  } finally {
    store.close();
  }
});

test('two stores on one file (two processes on one machine) see each other\'s writes', () => {
  const dir = path.join(tempDir('grades-store-'), 'data');
  const a = GradeStore.open(dir);
  const b = GradeStore.open(dir);
  try {
    const grade = a.addGrade(2, { title: 'Shared', type: 'Homework', score: 50 });
    assert.equal(b.getStudent(2)?.grades.at(-1)?.id, grade?.id);
    assert.equal(b.listStudents().length, SEED_STUDENTS.length, 'seeded once');
  } finally {
    a.close();
    b.close();
  }
});
