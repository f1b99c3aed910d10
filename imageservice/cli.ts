import type { Command } from 'commander';
import { MasterClient } from './master/client.ts';
import { pruneCommand } from './pruneCommand.ts';
import { jobsCommands, submitCommand } from './bulk/commands.ts';
import { TASK_STATES, type TaskState } from './protocol.ts';
import { CliError, ago, intOption, printable, printJson, type CliContext } from '../shared/cli.ts';

/** `images submit | prune`, `jobs …` and `tasks list | show`: the image pipeline from a terminal. */
export function imageCommands(program: Command, context: () => CliContext): void {
  const images = program.command('images').description('the image pipeline');
  pruneCommand(images, context);
  submitCommand(images, context);
  jobsCommands(program, context);

  const tasks = program.command('tasks').description("the image master's tasks");
  tasks
    .command('list')
    .description('recent tasks, newest first')
    .option('--state <state>', TASK_STATES.join(' | '))
    .option('--limit <n>', 'at most this many', '50')
    .action(async (opts: { state?: string; limit: string }) => {
      const ctx = context();
      if (opts.state && !TASK_STATES.includes(opts.state as TaskState)) throw new CliError(`--state must be one of ${TASK_STATES.join(', ')}`);
      const limit = intOption(opts.limit, '--limit', 1, 1000);
      const master = new MasterClient(await ctx.service('imagemaster'));
      const { tasks: list, counts } = await master.list({ state: opts.state as TaskState | undefined, limit });
      if (ctx.json) return printJson(ctx, { tasks: list, counts });
      if (list.length === 0) ctx.out(opts.state ? `no ${opts.state} tasks` : 'no tasks');
      else ctx.table(['id', 'state', 'op', 'size', 'attempts', 'updated', 'error'], list.map((t) => [t.id, t.state, t.op, `${t.width}x${t.height}`, t.attempts, ago(t.updatedAt), t.error ?? '']));
      ctx.out(TASK_STATES.map((s) => `${s}: ${counts[s] ?? 0}`).join('  '));
    });
  tasks
    .command('show <id>')
    .description('one task')
    .action(async (id: string) => {
      const ctx = context();
      const task = await new MasterClient(await ctx.service('imagemaster')).get(intOption(id, 'id', 1));
      if (ctx.json) return printJson(ctx, task);
      for (const [key, value] of Object.entries(task)) ctx.out(`${printable(key).padEnd(15)} ${printable(String(value ?? ''))}`);
    });
}
