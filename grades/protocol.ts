/**
 * The grades service's wire types: one module that the server, its client and the portal import.
 * Field names are camelCase; request bodies are matched case-insensitively (parseBody), so the
 * reference Go portal's `{Title, Type, Score}` decodes too.
 */
import { z } from 'zod';

export const GRADE_TYPES = ['Test', 'Homework', 'Quiz'] as const;
export type GradeType = (typeof GRADE_TYPES)[number];

export const MAX_TITLE_LENGTH = 200;

/** "quiz" and "Quiz" are the same type; anything else is an unknown type. */
const gradeType = z.preprocess(
  (value) => (typeof value === 'string' ? (GRADE_TYPES.find((t) => t.toLowerCase() === value.trim().toLowerCase()) ?? value) : value),
  z.enum(GRADE_TYPES, { error: `must be one of ${GRADE_TYPES.join(', ')}` }),
);

/** The body of POST /students/:id/grades. */
export const newGradeSchema = z.object({
  title: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .trim()
    .min(1, 'is required')
    .max(MAX_TITLE_LENGTH, `must be at most ${MAX_TITLE_LENGTH} characters`),
  type: gradeType,
  score: z
    .number({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a number') })
    .min(0, 'must be between 0 and 100')
    .max(100, 'must be between 0 and 100'),
});
export type NewGrade = z.infer<typeof newGradeSchema>;

/** A stored grade, as the service answers it. */
export const gradeSchema = z.object({
  id: z.number().int(),
  studentId: z.number().int(),
  title: z.string(),
  type: z.enum(GRADE_TYPES),
  score: z.number(),
  createdAt: z.string(),
});
export type Grade = z.infer<typeof gradeSchema>;

export const studentSchema = z.object({
  id: z.number().int(),
  firstName: z.string(),
  lastName: z.string(),
  grades: z.array(gradeSchema),
  /** Mean of the scores, or null for a student with no grades yet. */
  average: z.number().nullable(),
});
export type Student = z.infer<typeof studentSchema>;

export const studentListSchema = z.array(studentSchema);

export function averageOf(grades: readonly { score: number }[]): number | null {
  if (grades.length === 0) return null;
  return grades.reduce((sum, grade) => sum + grade.score, 0) / grades.length;
}

/** Student (and grade) ids are positive integers written plainly ("7", not "07", "7.0" or "0x7"). */
export function parseStudentId(raw: string): number | undefined {
  if (!/^[1-9][0-9]{0,9}$/.test(raw)) return undefined;
  const id = Number(raw);
  return id <= 2 ** 31 - 1 ? id : undefined;
}
