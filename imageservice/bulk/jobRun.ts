/**
 * One run of a job whose files are in the manifest: upload what is pending (bounded concurrency, each with its
 * idempotency key), and meanwhile follow the master's job and download each result as its task is done. The
 * manifest is written after each step, so a run cut off anywhere leaves a state the next run resumes from.
 */
import type { Op } from '../ops.ts';
import type { JobTaskView } from '../jobProtocol.ts';
import { MasterError } from '../master/client.ts';
import { CliError } from '../../shared/cli.ts';
import { uploadKey, type Manifest, type ManifestFile } from './manifest.ts';
import type { MasterLink } from './masterLink.ts';
import type { BulkProgress } from './progress.ts';
import { ArchiveReaders, ChangedError, readVerified, writeResult } from './transfer.ts';
import type { ZipLimits } from './zipArchive.ts';
import type { TaskNews } from './taskNews.ts';

export interface RunSettings {
  job: string;
  jobId: number;
  op: Op;
  concurrency: number;
  /** How long to wait while no task of the job ends (and the job is not paused). */
  stallMs: number;
  limits: ZipLimits;
}

/** Runs `work` on each item, at most `n` at a time; after one fails, no new item starts. */
async function pool<T>(items: T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length && !failed) {
      try {
        await work(items[next++]);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  }));
}

export class JobRun {
  /** Uploaded files waiting for their task to end, by task id. */
  private readonly waiting = new Map<number, ManifestFile>();
  private readonly archives: ArchiveReaders;
  private ended = 0;
  private sentBytes = 0;
  private stopped = false;
  /** Temporary result files being written (removed if the run is interrupted). */
  readonly partials = new Set<string>();

  constructor(
    private readonly settings: RunSettings,
    private readonly manifest: Manifest,
    private readonly link: MasterLink,
    private readonly progress: BulkProgress,
    private readonly resultPaths: Map<string, string>,
    private readonly news: TaskNews,
  ) {
    this.archives = new ArchiveReaders(settings.limits);
  }

  /** Uploads the pending files and, when `follow`, waits for every task and downloads its result. */
  async run(files: ManifestFile[], follow: boolean): Promise<void> {
    const live = files.filter((f) => f.state !== 'skipped');
    this.ended = live.filter((f) => f.state === 'done' || f.state === 'failed').length;
    this.sentBytes = live.filter((f) => f.state === 'uploaded' || f.state === 'done').reduce((n, f) => n + f.size, 0);
    for (const file of live) if (file.state === 'uploaded' && file.taskId !== null) this.waiting.set(file.taskId, file);
    this.progress.start({ total: live.length, ended: this.ended, sentBytes: this.sentBytes, bytes: live.reduce((n, f) => n + f.size, 0) });
    let uploading = true;
    const uploads = pool(live.filter((f) => f.state === 'pending'), this.settings.concurrency, (file) => this.upload(file)).finally(() => {
      uploading = false;
    });
    try {
      await Promise.all([uploads, follow ? this.follow(() => uploading) : Promise.resolve()]);
    } catch (err) {
      // The other half stops too, so nothing writes to the manifest once the run is over.
      this.stopped = true;
      await uploads.catch(() => undefined);
      throw err;
    } finally {
      await this.archives.close();
    }
  }

  private failed(file: ManifestFile, error: string, taskId?: number): void {
    this.manifest.setState(this.settings.job, file.source, 'failed', { error, taskId });
    this.ended++;
    this.progress.line(`failed: ${file.source}: ${error}`);
    this.progress.event('failed', { file: file.source, task: taskId ?? null, error });
    this.progress.update({ ended: this.ended });
  }

  private async upload(file: ManifestFile): Promise<void> {
    if (this.stopped) return;
    let bytes: Buffer;
    try {
      bytes = await readVerified(file, this.archives);
    } catch (err) {
      if (err instanceof ChangedError) this.manifest.forgetHash(this.settings.job, file);
      const why = err instanceof ChangedError ? `${err.message}; not sent (run the command again to send what it holds now)` : `cannot read it: ${(err as Error).message}`;
      this.failed(file, why);
      return;
    }
    const { jobId } = this.settings;
    try {
      const { task, created } = await this.link.run(`uploading ${file.source}`, ({ jobs }) => jobs.upload(bytes, jobId, uploadKey(file.source, file.sha256!)));
      this.manifest.setState(this.settings.job, file.source, 'uploaded', { taskId: task.id });
      this.waiting.set(task.id, { ...file, state: 'uploaded', taskId: task.id });
      this.sentBytes += bytes.length;
      this.progress.event('uploaded', { file: file.source, task: task.id, created, bytes: bytes.length });
      this.progress.update({ sentBytes: this.sentBytes });
    } catch (err) {
      // The master refused this image (not a valid PNG after all, too large): that file fails, the others go on.
      if (err instanceof MasterError && err.status < 500) this.failed(file, `the master refused it: ${err.message}`);
      else throw err;
    }
  }

  /** Follows the job until nothing is being uploaded and every uploaded file's task has ended. */
  private async follow(uploading: () => boolean): Promise<void> {
    const { jobId, stallMs } = this.settings;
    let lastEnded = -1;
    let lastChange = Date.now();
    let delay = 100;
    let saidPaused = false;
    while ((uploading() || this.waiting.size > 0) && !this.stopped) {
      if (this.waiting.size > 0) {
        const job = await this.link.run('following the job', ({ jobs }) => jobs.get(jobId));
        const endedAtMaster = job.counts.done + job.counts.failed;
        if (endedAtMaster !== lastEnded) {
          lastEnded = endedAtMaster;
          lastChange = Date.now();
          delay = 100;
          await this.collect(await this.link.run('listing the job\'s tasks', ({ jobs }) => jobs.tasks(jobId)));
          continue;
        }
        if (job.state === 'paused') {
          if (!saidPaused) this.progress.line(`job ${jobId} is paused: its tasks wait (switchboard jobs resume ${jobId})`);
          saidPaused = true;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > stallMs) {
          throw new CliError(
            `no task of job ${jobId} ended for ${Math.round(stallMs / 1000)} s, ${this.waiting.size} still pending or running (is a worker running?); run the same command again to keep waiting`,
          );
        } else saidPaused = false;
      }
      await this.news.sleep(delay);
      // With task events flowing, a poll is only the backstop for a lost one.
      delay = Math.min(delay * 2, this.news.live ? 5000 : 1000);
    }
  }

  /** Downloads the results of the waiting files whose task is done, and records the failed ones. */
  private async collect(tasks: JobTaskView[]): Promise<void> {
    const done: [JobTaskView, ManifestFile][] = [];
    for (const task of tasks) {
      const file = this.waiting.get(task.id);
      if (!file) continue;
      if (task.state === 'failed') {
        this.waiting.delete(task.id);
        this.failed(file, task.error ?? 'failed', task.id);
      } else if (task.state === 'done') done.push([task, file]);
    }
    await pool(done, this.settings.concurrency, async ([task, file]) => {
      const target = this.resultPaths.get(file.source)!;
      let png: Buffer;
      try {
        png = await this.link.run(`downloading the result of task ${task.id}`, ({ master }) => master.result(task.id));
      } catch (err) {
        if (!(err instanceof MasterError) || err.status >= 500) throw err;
        this.waiting.delete(task.id);
        this.failed(file, `its result can't be downloaded: ${err.message}`, task.id);
        return;
      }
      await writeResult(target, png, this.partials);
      this.manifest.setState(this.settings.job, file.source, 'done', { resultPath: target });
      this.waiting.delete(task.id);
      this.ended++;
      this.progress.event('done', { file: file.source, task: task.id, output: target });
      this.progress.update({ ended: this.ended });
    });
  }
}
