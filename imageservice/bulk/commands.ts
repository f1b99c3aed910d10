/**
 * The bulk commands: `images submit <files, folders, .zip…>` (a resumable job, submitJob.ts) and
 * `jobs list | show | pause | resume | cancel`.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { envInt } from '../../shared/config.ts';
import { CliError, ago, intOption, printJson, type CliContext } from '../../shared/cli.ts';
import { OPS, opSchema, type Op } from '../ops.ts';
import type { JobView } from '../jobProtocol.ts';
import { JobClient } from '../master/jobClient.ts';
import { storageDefaults } from '../storage/config.ts';
import { Manifest, defaultStateDir } from './manifest.ts';
import { byteSize } from './progress.ts';
import { submitBulk } from './submitJob.ts';
import type { ZipLimits } from './zipArchive.ts';

/** The bounds on what is read (README, Configuration): an image as large as storage takes, and an archive's budget. */
export function zipLimits(env: NodeJS.ProcessEnv = process.env): ZipLimits {
  return {
    maxEntryBytes: envInt('MAX_IMAGE_BYTES', storageDefaults.maxImageBytes, env),
    maxTotalBytes: envInt('ZIP_MAX_BYTES', 4 * 2 ** 30, env),
    maxEntries: envInt('ZIP_MAX_ENTRIES', 100_000, env),
  };
}

function parseOp(value: string): Op {
  const op = opSchema.safeParse(value);
  if (!op.success) throw new CliError(`--op must be one of ${OPS.join(', ')}, got "${value}"`);
  return op.data;
}

export function submitCommand(images: Command, context: () => CliContext): void {
  images
    .command('submit <paths...>')
    .description('upload PNG files, folders (recursively) and .zip archives as one job, wait, and download the results; run it again to resume')
    .option('--op <op>', OPS.join(' | '), 'swap-rg')
    .option('--out <dir>', 'where to write the results (folders and archives keep their layout under it)', '.')
    .option('--job <name>', 'the job\'s name (default: from the paths and the op, so the same command resumes the same job)')
    .option('--concurrency <n>', 'uploads and downloads at a time', '4')
    .option('--state <dir>', 'where the manifest of jobs is kept (default: $XDG_STATE_HOME/switchboard or ~/.local/state/switchboard)')
    .option('--timeout <seconds>', 'give up when no task of the job ends for this long (a paused job waits)', '300')
    .option('--no-wait', 'upload and leave; run the command again later to download the results')
    .action(async (paths: string[], opts: { op: string; out: string; job?: string; concurrency: string; state?: string; timeout: string; wait: boolean }) => {
      const ctx = context();
      const job = opts.job?.trim();
      if (opts.job !== undefined && (!job || job.length > 200)) throw new CliError('--job must be 1-200 characters');
      process.exitCode = await submitBulk(ctx, {
        paths,
        job,
        op: parseOp(opts.op),
        outDir: opts.out,
        concurrency: intOption(opts.concurrency, '--concurrency', 1, 64),
        stateDir: opts.state ?? defaultStateDir(),
        wait: opts.wait,
        stallMs: intOption(opts.timeout, '--timeout', 1, 86_400) * 1000,
        limits: zipLimits(),
      });
    });
}

const jobLine = (job: JobView) =>
  `job ${job.id} "${job.name}" (${job.op}) ${job.state}: ${job.counts.done + job.counts.failed}/${job.total} ended (${job.counts.done} done, ${job.counts.failed} failed, ${job.counts.running} running, ${job.counts.pending} pending)`;

function jobId(value: string, manifest: () => Manifest): number {
  if (/^\d+$/.test(value)) return intOption(value, 'the job id', 1);
  const known = manifest().job(value)?.masterJobId;
  if (!known) throw new CliError(`no job named "${value}" in the manifest; give the master's job id (see jobs list)`);
  return known;
}

export function jobsCommands(program: Command, context: () => CliContext): void {
  const jobs = program.command('jobs').description('bulk jobs at the image master (made by images submit)');
  const withClient = async () => {
    const ctx = context();
    return { ctx, client: new JobClient(await ctx.service('imagemaster')) };
  };
  jobs
    .command('list')
    .description('jobs, newest first')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (opts: { limit: string }) => {
      const limit = intOption(opts.limit, '--limit', 1, 1000);
      const { ctx, client } = await withClient();
      const list = await client.list(limit);
      if (ctx.json) return printJson(ctx, { jobs: list });
      if (list.length === 0) return ctx.out('no jobs');
      ctx.table(
        ['id', 'name', 'op', 'state', 'ended', 'failed', 'running', 'pending', 'images/s', 'eta', 'created'],
        list.map((j) => [j.id, j.name, j.op, j.state, `${j.counts.done + j.counts.failed}/${j.total}`, j.counts.failed, j.counts.running, j.counts.pending, j.imagesPerSecond ?? '', j.etaSeconds === null ? '' : `${j.etaSeconds}s`, ago(j.createdAt)]),
      );
    });
  jobs
    .command('show <id>')
    .description("a job and its files (from this machine's manifest; the master's tasks when the manifest does not know it)")
    .option('--state <dir>', 'the manifest\'s folder (as for images submit)')
    .action(async (value: string, opts: { state?: string }) => {
      let manifest: Manifest | undefined;
      const open = () => (manifest ??= new Manifest(opts.state ?? defaultStateDir()));
      try {
        const id = jobId(value, open);
        const { ctx, client } = await withClient();
        const [job, tasks] = await Promise.all([client.get(id), client.tasks(id)]);
        const known = open().jobByMasterId(id);
        const byTask = new Map(tasks.map((t) => [t.id, t]));
        const files = known ? open().files(known.name) : [];
        if (ctx.json) return printJson(ctx, { job, files: known ? files : undefined, tasks: known ? undefined : tasks });
        ctx.out(jobLine(job));
        ctx.out(`${byteSize(job.bytes)} uploaded, ${byteSize(job.resultBytes)} of results${job.etaSeconds ? `, about ${job.etaSeconds}s left` : ''}`);
        if (!known) {
          ctx.table(['task', 'state', 'bytes', 'error'], tasks.map((t) => [t.id, t.state, t.bytes, t.error ?? '']));
          return;
        }
        ctx.table(
          ['file', 'state', 'task', 'result or reason'],
          files.map((f) => {
            // An uploaded file's state is its task's at the master (pending or running).
            const state = f.state === 'uploaded' && f.taskId !== null ? (byTask.get(f.taskId)?.state ?? f.state) : f.state;
            const detail = f.state === 'done' ? path.relative(process.cwd(), f.resultPath ?? '') : (f.error ?? '');
            return [f.source, state, f.taskId ?? '', detail];
          }),
        );
      } finally {
        manifest?.close();
      }
    });
  for (const [action, description] of [
    ['pause', 'stop its pending tasks from being claimed (running ones finish)'],
    ['resume', 'let its pending tasks be claimed again'],
    ['cancel', 'fail every task of it that is not done, and take no more uploads'],
  ] as const) {
    jobs
      .command(`${action} <id>`)
      .description(description)
      .option('--state <dir>', 'the manifest\'s folder, to find a job by its name')
      .action(async (value: string, opts: { state?: string }) => {
        let manifest: Manifest | undefined;
        try {
          const id = jobId(value, () => (manifest ??= new Manifest(opts.state ?? defaultStateDir())));
          const { ctx, client } = await withClient();
          const job = action === 'pause' ? await client.pause(id) : action === 'resume' ? await client.resume(id) : await client.cancel(id);
          if (ctx.json) return printJson(ctx, job);
          ctx.out(jobLine(job));
        } finally {
          manifest?.close();
        }
      });
  }
}
