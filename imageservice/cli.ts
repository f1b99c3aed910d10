import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { MasterClient } from './master/client.ts';
import { OPS, opSchema, type Op } from './ops.ts';
import { TASK_STATES, type TaskState, type TaskView } from './protocol.ts';
import { CliError, ago, intOption, printable, printJson, table, type CliContext } from '../shared/cli.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Submitted {
  file: string;
  task?: TaskView;
  output?: string;
  error?: string;
}

/** Waits until a task is done or failed; each answer is a fresh view of it. */
async function settle(master: MasterClient, id: number, onState: (task: TaskView) => void, timeoutMs: number): Promise<TaskView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await master.get(id);
    onState(task);
    if (task.state === 'done' || task.state === 'failed') return task;
    if (Date.now() > deadline) throw new CliError(`task ${id} is still ${task.state} after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** `images submit` and `tasks list | show`: the image pipeline from a terminal. */
export function imageCommands(program: Command, context: () => CliContext): void {
  program
    .command('images')
    .description('the image pipeline')
    .command('submit <files...>')
    .description('upload PNGs, wait for them to be processed, and download the results')
    .option('--op <op>', OPS.join(' | '), 'swap-rg')
    .option('--out <dir>', 'where to write the results', '.')
    .option('--timeout <seconds>', 'how long to wait for each image', '300')
    .action(async (files: string[], opts: { op: string; out: string; timeout: string }) => {
      const ctx = context();
      const op = opSchema.safeParse(opts.op);
      if (!op.success) throw new CliError(`--op must be one of ${OPS.join(', ')}, got "${opts.op}"`);
      const timeoutMs = intOption(opts.timeout, '--timeout', 1, 86_400) * 1000;
      const images: { file: string; bytes: Buffer }[] = [];
      for (const file of files) {
        let bytes: Buffer;
        try {
          bytes = await fs.readFile(file);
        } catch (err) {
          throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new CliError(`${file} is not a PNG file`);
        images.push({ file, bytes });
      }
      await fs.mkdir(opts.out, { recursive: true });
      const master = new MasterClient(await ctx.service('imagemaster'));
      const results = await submitAll(master, images, op.data, opts.out, timeoutMs, !ctx.json && process.stderr.isTTY);
      if (ctx.json) printJson(ctx, results);
      else for (const r of results) ctx.out(printable(r.output ? `${r.file} → ${r.output} (task ${r.task!.id})` : `${r.file}: failed: ${r.error}`));
      if (results.some((r) => !r.output)) process.exitCode = 1;
    });

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
      ctx.out(table(['id', 'state', 'op', 'size', 'attempts', 'updated', 'error'], list.map((t) => [t.id, t.state, t.op, `${t.width}x${t.height}`, t.attempts, ago(t.updatedAt), t.error ?? ''])));
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

async function submitAll(
  master: MasterClient,
  images: { file: string; bytes: Buffer }[],
  op: Op,
  outDir: string,
  timeoutMs: number,
  showProgress: boolean,
): Promise<Submitted[]> {
  const bars = showProgress
    ? new cliProgress.MultiBar({ format: ' {bar} {percentage}% | {file} | {status}', hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic)
    : undefined;
  const name = (file: string) => path.basename(file).slice(0, 32).padEnd(32);
  const run = async ({ file, bytes }: { file: string; bytes: Buffer }): Promise<Submitted> => {
    // 0-50 %: the upload; 50-100 %: processing (pending, running, done).
    const bar = bars?.create(100, 0, { file: name(file), status: 'uploading' });
    try {
      const task = await master.submit(bytes, op, (fraction) => bar?.update(Math.round(fraction * 50), { status: 'uploading' }));
      bar?.update(50, { status: `task ${task.id} ${task.state}` });
      const settled = await settle(master, task.id, (t) => bar?.update(t.state === 'running' ? 75 : t.state === 'pending' ? 50 : 100, { status: `task ${t.id} ${t.state}` }), timeoutMs);
      if (settled.state === 'failed') {
        bar?.update(100, { status: printable(`failed: ${settled.error}`) });
        return { file, task: settled, error: settled.error ?? 'failed' };
      }
      const output = path.join(outDir, `${path.basename(file, path.extname(file))}.${op}.png`);
      await fs.writeFile(output, await master.result(settled.id));
      bar?.update(100, { status: `done → ${output}` });
      return { file, task: settled, output };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      bar?.update(100, { status: printable(`error: ${message}`) });
      return { file, error: message };
    }
  };
  try {
    // A few uploads at a time: enough to keep the workers busy without flooding the master.
    const results: Submitted[] = new Array(images.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(4, images.length) }, async () => {
        while (next < images.length) {
          const index = next++;
          results[index] = await run(images[index]);
        }
      }),
    );
    return results;
  } finally {
    bars?.stop();
  }
}
