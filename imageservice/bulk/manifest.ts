/**
 * The CLI's manifest of its jobs, in embedded SQLite under the user's state folder: each job (name, op, the
 * master's job id) and each of its files (where it is, size, mtime, content hash, task, state, result). Every
 * change is written before the next step relies on it, so a run cut off anywhere resumes from here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Op } from '../ops.ts';

export const FILE_STATES = ['pending', 'uploaded', 'done', 'failed', 'skipped'] as const;
export type FileState = (typeof FILE_STATES)[number];

export interface ManifestJob {
  name: string;
  op: Op;
  masterJobId: number | null;
  outDir: string;
}

export interface ManifestFile {
  /** The file's absolute path, or the archive's and the entry's name after "!/". */
  source: string;
  path: string;
  entry: string | null;
  outRel: string;
  size: number;
  mtimeMs: number;
  sha256: string | null;
  taskId: number | null;
  state: FileState;
  resultPath: string | null;
  error: string | null;
}

/** XDG_STATE_HOME/switchboard, or ~/.local/state/switchboard (the XDG default), unless --state says. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'switchboard');
}

export const sourceOf = (file: string, entry: string | null) => (entry === null ? file : `${file}!/${entry}`);

/** The upload's Idempotency-Key: this file with this content, so a changed file is a new task and a resent one is not. */
export function uploadKey(source: string, sha256: string): string {
  return createHash('sha256').update(source).update('\0').update(sha256).digest('hex');
}

interface FileRow {
  source: string;
  path: string;
  entry: string | null;
  out_rel: string;
  size: number;
  mtime_ms: number;
  sha256: string | null;
  task_id: number | null;
  state: FileState;
  result_path: string | null;
  error: string | null;
}

const toFile = (row: FileRow): ManifestFile => ({
  source: row.source,
  path: row.path,
  entry: row.entry,
  outRel: row.out_rel,
  size: row.size,
  mtimeMs: row.mtime_ms,
  sha256: row.sha256,
  taskId: row.task_id,
  state: row.state,
  resultPath: row.result_path,
  error: row.error,
});

/** A file as the scan saw it: its content hash, or why it is skipped. */
export type ScannedFile = Omit<ManifestFile, 'taskId' | 'state' | 'resultPath' | 'error'> & { skipped?: string };

export class Manifest {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(readonly stateDir: string) {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.db = new Database(path.join(stateDir, 'manifest.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // A note lost with the machine's power is found again at the master by its idempotency key: no fsync per note.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        name TEXT PRIMARY KEY, op TEXT NOT NULL, master_job_id INTEGER, out_dir TEXT NOT NULL, created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS archives (
        job TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ms REAL NOT NULL, PRIMARY KEY (job, path)
      );
      CREATE TABLE IF NOT EXISTS files (
        job TEXT NOT NULL, source TEXT NOT NULL, path TEXT NOT NULL, entry TEXT, out_rel TEXT NOT NULL,
        size INTEGER NOT NULL, mtime_ms REAL NOT NULL, sha256 TEXT, task_id INTEGER,
        state TEXT NOT NULL CHECK (state IN ('pending', 'uploaded', 'done', 'failed', 'skipped')),
        result_path TEXT, error TEXT, updated_at INTEGER NOT NULL,
        PRIMARY KEY (job, source)
      );
    `);
    const db = this.db;
    this.statements = {
      job: db.prepare('SELECT name, op, master_job_id AS masterJobId, out_dir AS outDir FROM jobs WHERE name = ?'),
      jobByMasterId: db.prepare('SELECT name, op, master_job_id AS masterJobId, out_dir AS outDir FROM jobs WHERE master_job_id = ?'),
      insertJob: db.prepare('INSERT INTO jobs (name, op, out_dir, created_at) VALUES (@name, @op, @outDir, @now) ON CONFLICT (name) DO UPDATE SET out_dir = @outDir'),
      setMasterJob: db.prepare('UPDATE jobs SET master_job_id = ? WHERE name = ?'),
      archive: db.prepare('SELECT size, mtime_ms AS mtimeMs FROM archives WHERE job = ? AND path = ?'),
      saveArchive: db.prepare('INSERT INTO archives (job, path, size, mtime_ms) VALUES (?, ?, ?, ?) ON CONFLICT (job, path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms'),
      files: db.prepare('SELECT * FROM files WHERE job = ? ORDER BY rowid'),
      file: db.prepare('SELECT * FROM files WHERE job = ? AND source = ?'),
      archiveFiles: db.prepare('SELECT * FROM files WHERE job = ? AND path = ? AND entry IS NOT NULL ORDER BY rowid'),
      // A file whose content is unchanged keeps its task and result; a changed one starts again.
      upsert: db.prepare(`
        INSERT INTO files (job, source, path, entry, out_rel, size, mtime_ms, sha256, state, error, updated_at)
        VALUES (@job, @source, @path, @entry, @outRel, @size, @mtimeMs, @sha256, @state, @error, @now)
        ON CONFLICT (job, source) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, out_rel = excluded.out_rel,
          state = CASE WHEN files.sha256 IS excluded.sha256 AND files.state <> 'skipped' AND excluded.state <> 'skipped' THEN files.state ELSE excluded.state END,
          task_id = CASE WHEN files.sha256 IS excluded.sha256 THEN files.task_id ELSE NULL END,
          result_path = CASE WHEN files.sha256 IS excluded.sha256 THEN files.result_path ELSE NULL END,
          error = CASE WHEN files.sha256 IS excluded.sha256 AND excluded.state <> 'skipped' THEN files.error ELSE excluded.error END,
          sha256 = excluded.sha256, updated_at = excluded.updated_at`),
      setState: db.prepare('UPDATE files SET state = @state, task_id = COALESCE(@taskId, task_id), result_path = COALESCE(@resultPath, result_path), error = @error, updated_at = @now WHERE job = @job AND source = @source'),
      resetUploads: db.prepare(`UPDATE files SET state = 'pending', task_id = NULL, result_path = NULL, error = NULL WHERE job = ? AND state IN ('uploaded', 'done', 'failed')`),
      forgetHash: db.prepare('UPDATE files SET sha256 = NULL, mtime_ms = -1 WHERE job = ? AND source = ?'),
      forgetArchive: db.prepare('DELETE FROM archives WHERE job = ? AND path = ?'),
      retryFailed: db.prepare(`UPDATE files SET state = 'pending', task_id = NULL, error = NULL WHERE job = ? AND state = 'failed' AND task_id IS NULL`),
    };
  }

  job(name: string): ManifestJob | undefined {
    return this.statements.job.get(name) as ManifestJob | undefined;
  }

  jobByMasterId(id: number): ManifestJob | undefined {
    return this.statements.jobByMasterId.get(id) as ManifestJob | undefined;
  }

  saveJob(job: { name: string; op: Op; outDir: string }): void {
    this.statements.insertJob.run({ ...job, now: Date.now() });
  }

  setMasterJob(name: string, id: number): void {
    this.statements.setMasterJob.run(id, name);
  }

  archive(job: string, file: string): { size: number; mtimeMs: number } | undefined {
    return this.statements.archive.get(job, file) as { size: number; mtimeMs: number } | undefined;
  }

  files(job: string): ManifestFile[] {
    return (this.statements.files.all(job) as FileRow[]).map(toFile);
  }

  file(job: string, source: string): ManifestFile | undefined {
    const row = this.statements.file.get(job, source) as FileRow | undefined;
    return row && toFile(row);
  }

  archiveFiles(job: string, file: string): ManifestFile[] {
    return (this.statements.archiveFiles.all(job, file) as FileRow[]).map(toFile);
  }

  /** Writes a scan in one transaction: its files, the archives it read whole, and what it skipped. */
  record(job: string, scanned: ScannedFile[], archives: { path: string; size: number; mtimeMs: number }[]): void {
    const now = Date.now();
    this.db.transaction(() => {
      for (const file of scanned) {
        this.statements.upsert.run({
          job,
          source: file.source,
          path: file.path,
          entry: file.entry,
          outRel: file.outRel,
          size: file.size,
          mtimeMs: file.mtimeMs,
          sha256: file.sha256,
          state: file.skipped ? 'skipped' : 'pending',
          error: file.skipped ?? null,
          now,
        });
      }
      for (const a of archives) this.statements.saveArchive.run(job, a.path, a.size, a.mtimeMs);
    })();
  }

  setState(job: string, source: string, state: FileState, details: { taskId?: number; resultPath?: string; error?: string } = {}): void {
    this.statements.setState.run({ job, source, state, taskId: details.taskId ?? null, resultPath: details.resultPath ?? null, error: details.error ?? null, now: Date.now() });
  }

  /** The master no longer knows the job (its data was lost): every file goes again. */
  resetUploads(job: string): void {
    this.statements.resetUploads.run(job);
  }

  /** The file is not what was hashed: the next scan reads it again (its archive too, for an entry). */
  forgetHash(job: string, file: ManifestFile): void {
    this.statements.forgetHash.run(job, file.source);
    if (file.entry !== null) this.statements.forgetArchive.run(job, file.path);
  }

  /** Files that failed before they became a task (unreadable, changed while read) are tried again on the next run. */
  retryFailedUploads(job: string): void {
    this.statements.retryFailed.run(job);
  }

  close(): void {
    this.db.close();
  }
}
