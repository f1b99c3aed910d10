import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Grade, NewGrade, Student } from './protocol.ts';
import { SEED_STUDENTS, type SeedStudent } from './seed.ts';
import { toGrade, toStudent, type GradeRow, type GradeStore, type StudentRow } from './store.ts';
import { sqliteJobs, type SqliteHousekeepingSettings } from '../shared/sqliteBackup.ts';
import type { HousekeepingJob } from '../shared/housekeeping.ts';

export const DATABASE_FILE = 'grades.db';

const SCHEMA_VERSION = 1;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS students (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS grades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student_id INTEGER NOT NULL REFERENCES students(id),
    title TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('Test', 'Homework', 'Quiz')),
    score REAL NOT NULL CHECK (score >= 0 AND score <= 100),
    created_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS grades_by_student ON grades (student_id, id);
`;

/**
 * Students and their grades in embedded SQLite (WAL) under the data directory. Several grades
 * processes on one machine may share the file: SQLite serialises their writes. The calls are synchronous
 * underneath (better-sqlite3); the promises only give them the store interface's shape.
 */
export class SqliteGradeStore implements GradeStore {
  readonly kind = 'sqlite';
  private readonly statements;

  private constructor(private readonly db: Database.Database) {
    this.statements = {
      students: db.prepare<[], StudentRow>('SELECT id, first_name, last_name FROM students ORDER BY id'),
      student: db.prepare<[number], StudentRow>('SELECT id, first_name, last_name FROM students WHERE id = ?'),
      allGrades: db.prepare<[], GradeRow>('SELECT * FROM grades ORDER BY student_id, id'),
      gradesOf: db.prepare<[number], GradeRow>('SELECT * FROM grades WHERE student_id = ? ORDER BY id'),
      insertGrade: db.prepare<[number, string, string, number, string], GradeRow>(
        'INSERT INTO grades (student_id, title, type, score, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *',
      ),
      insertStudent: db.prepare<[number, string, string]>('INSERT INTO students (id, first_name, last_name) VALUES (?, ?, ?)'),
      updateGrade: db.prepare<[string, string, number, number, number], GradeRow>(
        'UPDATE grades SET title = ?, type = ?, score = ? WHERE id = ? AND student_id = ? RETURNING *',
      ),
      deleteGrade: db.prepare<[number, number]>('DELETE FROM grades WHERE id = ? AND student_id = ?'),
      countGrades: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM grades'),
    };
  }

  /**
   * Opens (or creates and seeds) the database in dataDir. Two instances that start at once on one file
   * can both ask for the lock that switching to WAL needs: SQLite then answers one of them SQLITE_BUSY at
   * once (waiting could deadlock), so that one tries again shortly, for up to 5 s.
   */
  static open(dataDir: string, seed: readonly SeedStudent[] = SEED_STUDENTS): SqliteGradeStore {
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        return SqliteGradeStore.openOnce(dataDir, seed);
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 + Math.random() * 30);
      }
    }
  }

  private static openOnce(dataDir: string, seed: readonly SeedStudent[]): SqliteGradeStore {
    fs.mkdirSync(dataDir, { recursive: true });
    const db = new Database(path.join(dataDir, DATABASE_FILE), { timeout: 5000 });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.exec(SCHEMA);
      const store = new SqliteGradeStore(db);
      store.migrate(seed);
      return store;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Seeds on the first start only; IMMEDIATE so two processes starting at once seed once. */
  private migrate(seed: readonly SeedStudent[]): void {
    this.db
      .transaction(() => {
        const version = this.db.pragma('user_version', { simple: true }) as number;
        if (version >= SCHEMA_VERSION) return;
        const now = new Date().toISOString();
        for (const student of seed) {
          this.statements.insertStudent.run(student.id, student.firstName, student.lastName);
          for (const grade of student.grades) this.statements.insertGrade.get(student.id, grade.title, grade.type, grade.score, now);
        }
        this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
  }

  async listStudents(): Promise<Student[]> {
    const byStudent = new Map<number, Grade[]>();
    for (const row of this.statements.allGrades.all()) {
      const list = byStudent.get(row.student_id) ?? [];
      list.push(toGrade(row));
      byStudent.set(row.student_id, list);
    }
    return this.statements.students.all().map((row) => toStudent(row, byStudent.get(row.id) ?? []));
  }

  async getStudent(id: number): Promise<Student | undefined> {
    const row = this.statements.student.get(id);
    return row && toStudent(row, this.statements.gradesOf.all(id).map(toGrade));
  }

  async addGrade(studentId: number, grade: NewGrade): Promise<Grade | undefined> {
    return this.db
      .transaction(() => {
        if (!this.statements.student.get(studentId)) return undefined;
        const row = this.statements.insertGrade.get(studentId, grade.title, grade.type, grade.score, new Date().toISOString());
        return row && toGrade(row);
      })
      .immediate();
  }

  async updateGrade(studentId: number, gradeId: number, grade: NewGrade): Promise<Grade | undefined> {
    const row = this.statements.updateGrade.get(grade.title, grade.type, grade.score, gradeId, studentId);
    return row && toGrade(row);
  }

  async deleteGrade(studentId: number, gradeId: number): Promise<boolean> {
    return this.statements.deleteGrade.run(gradeId, studentId).changes > 0;
  }

  async countGrades(): Promise<number> {
    return this.statements.countGrades.get()!.n;
  }

  /** The database's WAL checkpoint and online backup jobs (shared/sqliteBackup.ts), backups under dataDir/backups. */
  housekeepingJobs(dataDir: string, settings: SqliteHousekeepingSettings): HousekeepingJob[] {
    return sqliteJobs(this.db, 'grades', dataDir, settings);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
