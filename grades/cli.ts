import type { Command } from 'commander';
import { GradesClient } from './client.ts';
import { GRADE_TYPES, newGradeSchema } from './protocol.ts';
import { CliError, intOption, printable, printJson, type CliContext } from '../shared/cli.ts';
import { describeIssues } from '../shared/validate.ts';

const fmt = (average: number | null) => (average === null ? '-' : average.toFixed(1));

/** `grades list | add`: the grades service from a terminal. */
export function gradesCommands(program: Command, context: () => CliContext): void {
  const grades = program.command('grades').description('students and their grades');

  grades
    .command('list')
    .description('every student with their average')
    .action(async () => {
      const ctx = context();
      const students = await new GradesClient(await ctx.service('grades')).listStudents();
      if (ctx.json) return printJson(ctx, students);
      if (students.length === 0) return ctx.out('no students');
      ctx.table(['id', 'student', 'grades', 'average'], students.map((s) => [s.id, `${s.firstName} ${s.lastName}`, s.grades.length, fmt(s.average)]));
    });

  grades
    .command('add <studentId>')
    .description('add a grade to a student')
    .requiredOption('--title <title>', 'what was graded')
    .requiredOption('--type <type>', GRADE_TYPES.join(' | '))
    .requiredOption('--score <score>', '0 to 100')
    .action(async (studentId: string, opts: { title: string; type: string; score: string }) => {
      const ctx = context();
      const id = intOption(studentId, 'studentId', 1);
      const score = Number(opts.score);
      const parsed = newGradeSchema.safeParse({ title: opts.title, type: opts.type, score: opts.score.trim() === '' ? NaN : score });
      if (!parsed.success) throw new CliError(`invalid grade: ${describeIssues(parsed.error).replace(/^(\w+):/, '--$1')}`);
      const client = new GradesClient(await ctx.service('grades'));
      const grade = await client.addGrade(id, parsed.data);
      const student = await client.getStudent(id);
      if (ctx.json) return printJson(ctx, { grade, student });
      ctx.out(printable(`added ${grade.type} "${grade.title}" (${grade.score}) to ${student.firstName} ${student.lastName}; average now ${fmt(student.average)}`));
    });
}
