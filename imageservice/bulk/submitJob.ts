/**
 * `images submit <files, folders, .zip…>` as a resumable job: walk and scan (nothing is created when they find no
 * PNG or a bad archive), record the job's files in the manifest, create or find the master's job, learn which
 * files the master already has (by idempotency key, so none is sent twice), then run it (jobRun.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Op } from '../ops.ts';
import type { JobView } from '../jobProtocol.ts';
import { MasterError } from '../master/client.ts';
import { CliError, type CliContext } from '../../shared/cli.ts';
import { Manifest, uploadKey, type FileState } from './manifest.ts';
import { MasterLink } from './masterLink.ts';
import { BulkProgress } from './progress.ts';
import { scan } from './scan.ts';
import { walk } from './sources.ts';
import { resultPaths } from './transfer.ts';
import { JobRun } from './jobRun.ts';
import { TaskNews } from './taskNews.ts';
import type { ZipLimits } from './zipArchive.ts';

export interface BulkOptions {
  paths: string[];
  job?: string;
  op: Op;
  outDir: string;
  concurrency: number;
  stateDir: string;
  /** Wait for the results and download them (false: upload and leave). */
  wait: boolean;
  stallMs: number;
  limits: ZipLimits;
}

/** The same paths and op name the same job, so running the same command again resumes it. */
export function defaultJobName(paths: string[], op: Op): string {
  const absolute = paths.map((p) => path.resolve(p)).sort();
  const digest = createHash('sha256').update(absolute.join('\0')).update(`\0${op}`).digest('hex').slice(0, 8);
  return `${path.basename(path.resolve(paths[0])).replace(/\.(zip|png)$/i, '') || 'root'}-${op}-${digest}`;
}

function countStates(states: FileState[]): Record<FileState, number> {
  const counts: Record<FileState, number> = { pending: 0, uploaded: 0, done: 0, failed: 0, skipped: 0 };
  for (const state of states) counts[state]++;
  return counts;
}

/** Finds the manifest's job at the master, or creates it (again, when the master lost it). */
async function masterJob(manifest: Manifest, link: MasterLink, name: string, op: Op, progress: BulkProgress): Promise<JobView> {
  const known = manifest.job(name)?.masterJobId ?? null;
  if (known !== null) {
    try {
      return await link.run('looking up the job', ({ jobs }) => jobs.get(known));
    } catch (err) {
      if (!(err instanceof MasterError && err.status === 404)) throw err;
      progress.line(`the master no longer knows job ${known}; every file of "${name}" goes again`);
      manifest.resetUploads(name);
    }
  }
  const job = await link.run('creating the job', ({ jobs }) => jobs.create(name, op));
  manifest.setMasterJob(name, job.id);
  return job;
}

export async function submitBulk(ctx: CliContext, options: BulkOptions): Promise<number> {
  const mode = ctx.json ? 'json' : process.stderr.isTTY ? 'bar' : 'lines';
  const progress = new BulkProgress(mode, ctx.out, (line) => process.stderr.write(`${line}\n`));
  const manifest = new Manifest(options.stateDir);
  let run: JobRun | undefined;
  const news = new TaskNews();
  const name = options.job ?? defaultJobName(options.paths, options.op);
  // Ctrl-C: the manifest is already up to date; remove half-written results and say how to go on.
  const interrupted = () => {
    progress.stop();
    for (const partial of run?.partials ?? []) fs.rmSync(partial, { force: true });
    const counts = countStates(manifest.files(name).map((f) => f.state));
    process.stderr.write(`interrupted: ${counts.uploaded + counts.done + counts.failed} uploaded, ${counts.done} results downloaded; run the same command again to resume job "${name}"\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const walked = await walk(options.paths);
    if (walked.problems.length > 0) throw new CliError(walked.problems.join('; '));
    const existing = manifest.job(name);
    if (existing && existing.op !== options.op) throw new CliError(`job "${name}" is ${existing.op}, not ${options.op}: give --op ${existing.op}, or another --job name`);
    const scanned = await scan(walked, manifest, name, options.limits);
    if (scanned.problems.length > 0) throw new CliError(`${scanned.problems.join('; ')}; nothing was uploaded`);
    const skipped = scanned.files.filter((f) => f.skipped);
    for (const file of skipped) {
      progress.line(`skipped ${file.source}: ${file.skipped}`);
      progress.event('skipped', { file: file.source, reason: file.skipped });
    }
    if (skipped.length === scanned.files.length) {
      throw new CliError(`no PNG files to upload in ${options.paths.join(', ')}${skipped.length ? ` (${skipped.length} skipped, see above)` : ''}; no job was created`);
    }

    manifest.saveJob({ name, op: options.op, outDir: path.resolve(options.outDir) });
    manifest.record(name, scanned.files, scanned.archives);
    manifest.retryFailedUploads(name);
    const link = new MasterLink(ctx, options.stallMs, (why) => progress.line(why));
    const job = await masterJob(manifest, link, name, options.op, progress);
    if (job.state === 'cancelled') throw new CliError(`job ${job.id} ("${name}") was cancelled; give another --job name to start again`);
    progress.event('job', { id: job.id, name, op: job.op, state: job.state });

    // What the master has that the manifest does not know yet (a run cut off after an upload, before its note).
    const tasks = await link.run('listing the job\'s tasks', ({ jobs }) => jobs.tasks(job.id));
    const byKey = new Map(tasks.filter((t) => t.idempotencyKey).map((t) => [t.idempotencyKey!, t.id]));
    const ids = new Set(tasks.map((t) => t.id));
    for (const file of manifest.files(name)) {
      const taskId = file.sha256 ? byKey.get(uploadKey(file.source, file.sha256)) : undefined;
      if (file.state === 'pending' && taskId !== undefined) manifest.setState(name, file.source, 'uploaded', { taskId });
      // Its task is gone (removed by the retention before its result was fetched): send it again.
      if (file.state === 'uploaded' && file.taskId !== null && !ids.has(file.taskId)) manifest.setState(name, file.source, 'pending');
    }

    const files = manifest.files(name);
    if (options.wait) news.start(ctx, (live) => progress.event('news', { live }));
    run = new JobRun(
      { job: name, jobId: job.id, op: options.op, concurrency: options.concurrency, stallMs: options.stallMs, limits: options.limits },
      manifest,
      link,
      progress,
      resultPaths(files, options.outDir, options.op),
      news,
    );
    await run.run(files, options.wait);
    progress.stop();

    const counts = countStates(manifest.files(name).map((f) => f.state));
    const unfinished = counts.pending + counts.uploaded;
    if (ctx.json) progress.event('summary', { job: job.id, name, op: options.op, ...counts, out: path.resolve(options.outDir) });
    else {
      const rest = options.wait ? '' : `; ${unfinished} not finished yet (run the same command again to wait for them and download the results)`;
      ctx.out(`job ${job.id} "${name}" (${options.op}): ${counts.done} done, ${counts.failed} failed, ${counts.skipped} skipped${rest}; results in ${path.resolve(options.outDir)}`);
    }
    return counts.failed > 0 || (options.wait && unfinished > 0) ? 1 : 0;
  } finally {
    news.stop();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    progress.stop();
    manifest.close();
  }
}
