/**
 * Housekeeping for an embedded SQLite database: a WAL checkpoint that truncates the -wal file (it
 * otherwise only grows to its high-water mark), and an online backup (SQLite's backup API, taken
 * while the service keeps writing) into DATA_DIR/backups, keeping the newest few.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { envInt } from './config.ts';
import { envCron, type HousekeepingJob, type JobReport } from './housekeeping.ts';

export interface SqliteHousekeepingSettings {
  checkpointCron: string | undefined;
  backupCron: string | undefined;
  /** Backups kept per database (the oldest go first). */
  backupKeep: number;
}

export const sqliteHousekeepingDefaults = { checkpointCron: '*/15 * * * *', backupCron: '30 2 * * *', backupKeep: 7 };

/** SQLITE_CHECKPOINT_CRON, SQLITE_BACKUP_CRON and SQLITE_BACKUP_KEEP, the same in every service with a database. */
export function sqliteHousekeepingFromEnv(env: NodeJS.ProcessEnv = process.env): SqliteHousekeepingSettings {
  const d = sqliteHousekeepingDefaults;
  return {
    checkpointCron: envCron('SQLITE_CHECKPOINT_CRON', d.checkpointCron, env),
    backupCron: envCron('SQLITE_BACKUP_CRON', d.backupCron, env),
    backupKeep: Math.max(1, envInt('SQLITE_BACKUP_KEEP', d.backupKeep, env)),
  };
}

/** Moves the WAL into the database and truncates it. */
export function checkpoint(db: Database.Database): JobReport {
  const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
  // busy: another connection (a second grades process) was reading; the next run gets the rest.
  const detail = result.busy ? `checkpoint partial (${result.checkpointed} of ${result.log} WAL pages; a reader was busy)` : undefined;
  return { removed: { wal_pages: Math.max(0, result.checkpointed) }, detail };
}

/** The backups of one database, oldest first (their names sort by time). */
async function backupsOf(dir: string, name: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  return names.filter((file) => file.startsWith(`${name}-`) && file.endsWith('.sqlite')).sort();
}

/**
 * Writes `<dir>/<name>-<UTC time>.sqlite` (to a temporary name first, so a crash never leaves a
 * half backup that looks whole) and removes all but the newest `keep`.
 */
export async function backup(db: Database.Database, dir: string, name: string, keep: number): Promise<JobReport> {
  await fs.mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const target = path.join(dir, `${name}-${stamp}.sqlite`);
  const partial = `${target}.partial`;
  try {
    await db.backup(partial);
    await fs.rename(partial, target);
  } catch (err) {
    await fs.rm(partial, { force: true });
    throw err;
  }
  const { size } = await fs.stat(target);
  const old = (await backupsOf(dir, name)).slice(0, -keep);
  for (const file of old) await fs.rm(path.join(dir, file), { force: true });
  return { removed: { backups: old.length }, detail: `backed up to ${path.relative(path.dirname(dir), target)} (${size} bytes)` };
}

/** The two jobs for one database: `<name>-checkpoint` and `<name>-backup` (into DATA_DIR/backups). */
export function sqliteJobs(db: Database.Database, name: string, dataDir: string, settings: SqliteHousekeepingSettings): HousekeepingJob[] {
  return [
    { name: `${name}-checkpoint`, cron: settings.checkpointCron, run: () => checkpoint(db) },
    { name: `${name}-backup`, cron: settings.backupCron, run: () => backup(db, path.join(dataDir, 'backups'), name, settings.backupKeep) },
  ];
}
