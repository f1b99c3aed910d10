import type pg from 'pg';
import type { Logger } from 'winston';
import type { Grade, NewGrade, Student } from './protocol.ts';
import { SEED_STUDENTS, type SeedStudent } from './seed.ts';
import { migrate } from './postgresSchema.ts';
import { StoreUnavailableError, toGrade, toStudent, type GradeRow, type GradeStore, type StudentRow } from './store.ts';
import { createPool, isUnavailable, redactUrl, untilAvailable, type PoolBounds } from '../shared/postgres.ts';
import type { HousekeepingJob } from '../shared/housekeeping.ts';
import { postgresDefaults } from './config.ts';

/** The URL and, where given, the pool's bounds (shared/postgres.ts; grades' defaults in config.ts). */
export interface PostgresStoreOptions extends Partial<PoolBounds> {
  /** postgres://user:password@host:port/database (DATABASE_URL). */
  url: string;
  /** How long the first connection and migration may keep failing before the start gives up. */
  startTimeoutMs?: number;
  seed?: readonly SeedStudent[];
  logger?: Logger;
}

const STUDENTS_WITH_GRADES = `
  SELECT s.id, s.first_name, s.last_name, g.id AS grade_id, g.title, g.type, g.score, g.created_at
  FROM grades.students s LEFT JOIN grades.grades g ON g.student_id = s.id`;

interface StudentGradeRow extends StudentRow {
  grade_id: number | null;
  title: string;
  type: GradeRow['type'];
  score: number;
  created_at: Date;
}

/** Folds the joined rows (ordered by student, then grade) into students with their grades. */
function foldStudents(rows: StudentGradeRow[]): Student[] {
  const students: Student[] = [];
  let current: { row: StudentRow; grades: Grade[] } | undefined;
  const flush = () => current && students.push(toStudent(current.row, current.grades));
  for (const row of rows) {
    if (current?.row.id !== row.id) {
      flush();
      current = { row, grades: [] };
    }
    if (row.grade_id !== null) current.grades.push(toGrade({ ...row, id: row.grade_id, student_id: row.id }));
  }
  flush();
  return students;
}

/**
 * Students and grades in a PostgreSQL that any number of grades instances share. Each call is one statement
 * (one snapshot, committed on return), bounded by the statement timeout; the database being away surfaces as
 * StoreUnavailableError, and the pool reconnects by itself on the next call once it is back.
 */
export class PostgresGradeStore implements GradeStore {
  readonly kind = 'postgres';

  private constructor(private readonly pool: pg.Pool) {}

  /** Connects, migrates (and seeds on the very first start), retrying while the database is away. */
  static async open(options: PostgresStoreOptions): Promise<PostgresGradeStore> {
    const settings = { ...postgresDefaults, ...options };
    const pool = createPool(
      settings,
      'switchboard-grades',
      // A pooled connection the server closed (a restart) reports here; the pool drops it and opens a new one when needed.
      (err) => options.logger?.warn(`grades database connection lost: ${err.message}`),
    );
    try {
      const applied = await untilAvailable(() => migrate(pool, settings.seed ?? SEED_STUDENTS), {
        backoff: { initialMs: 100, maxMs: 2000 },
        deadline: Date.now() + settings.startTimeoutMs,
        waiting: (err) => options.logger?.warn(`grades database not reachable yet (${err.message}); trying again`),
      });
      if (applied.length > 0) options.logger?.info(`grades database migrated to version ${applied.at(-1)} (applied ${applied.join(', ')})`);
      return new PostgresGradeStore(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new Error(`grades database at ${redactUrl(settings.url)}: ${(err as Error).message}`);
    }
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (err) {
      if (isUnavailable(err)) throw new StoreUnavailableError(`the grades database is unavailable: ${(err as Error).message}`);
      throw err;
    }
  }

  async listStudents(): Promise<Student[]> {
    return foldStudents(await this.query<StudentGradeRow>(`${STUDENTS_WITH_GRADES} ORDER BY s.id, g.id`));
  }

  async getStudent(id: number): Promise<Student | undefined> {
    return foldStudents(await this.query<StudentGradeRow>(`${STUDENTS_WITH_GRADES} WHERE s.id = $1 ORDER BY g.id`, [id]))[0];
  }

  async addGrade(studentId: number, grade: NewGrade): Promise<Grade | undefined> {
    // One statement: the student's existence and the insert in one snapshot, committed before it returns.
    const rows = await this.query<GradeRow>(
      `INSERT INTO grades.grades (student_id, title, type, score)
       SELECT id, $2, $3, $4 FROM grades.students WHERE id = $1
       RETURNING id, student_id, title, type, score, created_at`,
      [studentId, grade.title, grade.type, grade.score],
    );
    return rows[0] && toGrade(rows[0]);
  }

  async updateGrade(studentId: number, gradeId: number, grade: NewGrade): Promise<Grade | undefined> {
    const rows = await this.query<GradeRow>(
      `UPDATE grades.grades SET title = $3, type = $4, score = $5 WHERE id = $2 AND student_id = $1
       RETURNING id, student_id, title, type, score, created_at`,
      [studentId, gradeId, grade.title, grade.type, grade.score],
    );
    return rows[0] && toGrade(rows[0]);
  }

  async deleteGrade(studentId: number, gradeId: number): Promise<boolean> {
    return (await this.query('DELETE FROM grades.grades WHERE id = $2 AND student_id = $1 RETURNING id', [studentId, gradeId])).length > 0;
  }

  async countGrades(): Promise<number> {
    return (await this.query<{ n: number }>('SELECT COUNT(*)::integer AS n FROM grades.grades'))[0]!.n;
  }

  housekeepingJobs(): HousekeepingJob[] {
    return [];
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
