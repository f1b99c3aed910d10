import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { MasterClient } from './master/client.ts';
import { pruneCommand } from './pruneCommand.ts';
import { OPS, opSchema, type Op } from './ops.ts';
import { TASK_STATES, type TaskState, type TaskView } from './protocol.ts';
import { CliError, ago, intOption, printable, printJson, type CliContext } from '../shared/cli.ts';

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
  const images = program.command('images').description('the image pipeline');
  pruneCommand(images, context);
  images
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
      const problems: string[] = [];
      const images: { file: string; bytes: Buffer }[] = [];
      for (const file of files) {
        const read = await readImage(file);
        if (typeof read === 'string') problems.push(read);
        else images.push({ file, bytes: read });
      }
      if (problems.length > 0) throw new CliError(problems.join('; '));
      await fs.mkdir(opts.out, { recursive: true });
      // The bars are drawn before the master is looked up, so something shows from the first moment.
      const progress = !ctx.json && process.stderr.isTTY ? new SubmitProgress(images) : undefined;
      let results: Submitted[];
      try {
        const master = new MasterClient(await ctx.service('imagemaster'));
        results = await submitAll(master, images, op.data, opts.out, timeoutMs, progress);
      } finally {
        progress?.stop();
      }
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

/** A PNG file's bytes, or what is wrong with it in words (never a bare EISDIR or ENOENT). */
async function readImage(file: string): Promise<Buffer | string> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') return `${file} is a folder; give the PNG files in it (e.g. ${path.join(file, '*.png')})`;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `no such file: ${file}`;
    if (code === 'EACCES' || code === 'EPERM') return `cannot read ${file}: permission denied`;
    return `cannot read ${file}: ${(err as Error).message}`;
  }
  return bytes.subarray(0, 8).equals(PNG_SIGNATURE) ? bytes : `${file} is not a PNG file`;
}

/** 1.5 kB, 12.0 MB: always 8 characters, so the columns after it stay put. */
function byteSize(n: number): string {
  const [value, unit] = n < 1000 ? [String(n), 'B'] : n < 1e6 ? [(n / 1e3).toFixed(1), 'kB'] : [(n / 1e6).toFixed(1), 'MB'];
  return `${value} ${unit}`.padStart(8);
}

/**
 * One bar per file on stderr: the bar and its figures are the bytes uploaded; once uploaded, the status is
 * the task's state (pending, running, done, failed). Every column has a fixed width, so nothing moves.
 */
class SubmitProgress {
  private readonly bars: cliProgress.MultiBar;
  private readonly byFile = new Map<string, cliProgress.SingleBar>();

  constructor(images: { file: string; bytes: Buffer }[]) {
    const width = Math.min(32, Math.max(...images.map(({ file }) => path.basename(file).length)));
    this.bars = new cliProgress.MultiBar(
      {
        format: ' {bar} {value}/{total} | {name} | {status}',
        formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? byteSize(value) : String(value)),
        hideCursor: true,
        clearOnComplete: false,
        // Narrow, so the status fits a common 80-column terminal (a line is cut at its width).
        barsize: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    for (const { file, bytes } of images) {
      const name = printable(path.basename(file)).slice(0, width).padEnd(width);
      this.byFile.set(file, this.bars.create(bytes.length, 0, { name, status: 'waiting to upload' }));
    }
  }

  uploaded(file: string, bytes: number): void {
    const bar = this.byFile.get(file);
    // All bytes sent is not yet a task: the master still checks and stores the image before it answers.
    bar?.update(bytes, { status: bytes < bar.getTotal() ? 'uploading' : 'sent; the master is storing it' });
  }

  status(file: string, status: string): void {
    this.byFile.get(file)?.update({ status: printable(status) });
  }

  stop(): void {
    this.bars.stop();
  }
}

function taskStatus(task: TaskView): string {
  if (task.state === 'running') return `task ${task.id} running (attempt ${task.attempts})`;
  if (task.state === 'failed') return `task ${task.id} failed: ${task.error ?? 'no reason given'}`;
  return `task ${task.id} ${task.state}`;
}

async function submitAll(
  master: MasterClient,
  images: { file: string; bytes: Buffer }[],
  op: Op,
  outDir: string,
  timeoutMs: number,
  progress: SubmitProgress | undefined,
): Promise<Submitted[]> {
  const run = async ({ file, bytes }: { file: string; bytes: Buffer }): Promise<Submitted> => {
    progress?.uploaded(file, 0);
    try {
      const task = await master.submit(bytes, op, (fraction) => progress?.uploaded(file, Math.round(fraction * bytes.length)));
      progress?.uploaded(file, bytes.length); // the last progress event may have been throttled away
      progress?.status(file, taskStatus(task));
      const settled = await settle(master, task.id, (t) => progress?.status(file, taskStatus(t)), timeoutMs);
      if (settled.state === 'failed') return { file, task: settled, error: settled.error ?? 'failed' };
      const output = path.join(outDir, `${path.basename(file, path.extname(file))}.${op}.png`);
      await fs.writeFile(output, await master.result(settled.id));
      progress?.status(file, `task ${settled.id} done → ${path.basename(output)}`);
      return { file, task: settled, output };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      progress?.status(file, `error: ${message}`);
      return { file, error: message };
    }
  };
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
}
