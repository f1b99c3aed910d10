import { averageOf, type Grade, type GradeType, type NewGrade, type Student } from './protocol.ts';
import type { HousekeepingJob } from '../shared/housekeeping.ts';
import type { SqliteHousekeepingSettings } from '../shared/sqliteBackup.ts';

export const GRADE_STORES = ['sqlite', 'postgres'] as const;
/** Where the students and grades live: embedded SQLite under DATA_DIR, or a PostgreSQL that instances share. */
export type GradeStoreKind = (typeof GRADE_STORES)[number];

/**
 * Students and their grades. Every write resolves only once it is committed, so an answer built on it is
 * durable. Both implementations (sqliteStore.ts, postgresStore.ts) pass the same tests (store.test.ts).
 */
export interface GradeStore {
  readonly kind: GradeStoreKind;
  listStudents(): Promise<Student[]>;
  getStudent(id: number): Promise<Student | undefined>;
  /** Stores a grade, or answers undefined (and writes nothing) when the student is unknown. */
  addGrade(studentId: number, grade: NewGrade): Promise<Grade | undefined>;
  /** Replaces a grade's title, type and score (its id and createdAt stay); undefined when the student has no such grade. */
  updateGrade(studentId: number, gradeId: number, grade: NewGrade): Promise<Grade | undefined>;
  /** Removes a grade; false when the student has no such grade. */
  deleteGrade(studentId: number, gradeId: number): Promise<boolean>;
  countGrades(): Promise<number>;
  /** Scheduled maintenance of the store (SQLite's checkpoint and backups; none for PostgreSQL, its operator's). */
  housekeepingJobs(dataDir: string, settings: SqliteHousekeepingSettings): HousekeepingJob[];
  close(): Promise<void>;
}

/** The store can't be reached just now (the database is down, restarting or too slow): try again shortly. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}

/** A grade row as both databases hold it (snake_case columns). */
export interface GradeRow {
  id: number;
  student_id: number;
  title: string;
  type: GradeType;
  score: number;
  created_at: string | Date;
}

export interface StudentRow {
  id: number;
  first_name: string;
  last_name: string;
}

export function toGrade(row: GradeRow): Grade {
  const createdAt = row.created_at instanceof Date ? row.created_at.toISOString() : row.created_at;
  return { id: row.id, studentId: row.student_id, title: row.title, type: row.type, score: row.score, createdAt };
}

export function toStudent(row: StudentRow, grades: Grade[]): Student {
  return { id: row.id, firstName: row.first_name, lastName: row.last_name, grades, average: averageOf(grades) };
}
