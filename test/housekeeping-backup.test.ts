/** SQLite housekeeping (#18): the WAL checkpoint truncates the -wal file, and the online backup is a readable copy; /metrics counts the runs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startProcess, startRegistry, tempDir, waitFor } from './helpers.ts';
import { metricValue, startGrades } from './fixtures/grades.ts';

const EVERY_SECOND = { SQLITE_CHECKPOINT_CRON: '* * * * * *', SQLITE_BACKUP_CRON: '* * * * * *', SQLITE_BACKUP_KEEP: '2' };

/** The first backup of `name` under dataDir/backups for which `holds` is true, read with a connection of its own. */
function backupHolding(dataDir: string, name: string, holds: (db: Database.Database) => boolean): string | undefined {
  const dir = path.join(dataDir, 'backups');
  if (!fs.existsSync(dir)) return undefined;
  for (const file of fs.readdirSync(dir).filter((f) => f.startsWith(`${name}-`) && f.endsWith('.sqlite'))) {
    const db = new Database(path.join(dir, file), { readonly: true, fileMustExist: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      if (holds(db)) return file;
    } finally {
      db.close();
    }
  }
  return undefined;
}

function backupCount(dataDir: string, name: string): number {
  return fs.readdirSync(path.join(dataDir, 'backups')).filter((f) => f.startsWith(`${name}-`) && f.endsWith('.sqlite')).length;
}

test('grades: a checkpoint truncates the WAL, a backup holds the grade just added, the newest SQLITE_BACKUP_KEEP stay, and /metrics counts the runs', async (t) => {
  const registry = await startRegistry();
  const dataDir = tempDir('grades-housekeeping-');
  const grades = await startGrades(registry.url, dataDir, EVERY_SECOND);
  t.after(() => Promise.all([grades.stop(), registry.stop()]));

  const title = `backup proof ${Date.now()}`;
  const added = await fetch(`${grades.url}/students/1/grades`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title, type: 'Quiz', score: 77 }) });
  assert.equal(added.status, 201, await added.text());

  const file = await waitFor(
    () => backupHolding(dataDir, 'grades', (db) => (db.prepare('SELECT COUNT(*) AS n FROM grades WHERE title = ?').get(title) as { n: number }).n === 1),
    'a readable backup with the new grade',
    30_000,
  );
  assert.match(file ?? '', /^grades-\d{4}-\d{2}-\d{2}T[\d-]+Z\.sqlite$/);
  await waitFor(() => fs.statSync(path.join(dataDir, 'grades.db-wal')).size === 0, 'the WAL truncated by a checkpoint', 30_000);

  await waitFor(async () => (await metricValue(grades.url, 'housekeeping_runs_total', 'job="grades-backup",outcome="ok"')) >= 3, 'three backup runs', 30_000);
  assert.ok(backupCount(dataDir, 'grades') <= 2, 'older backups removed');
  assert.ok((await metricValue(grades.url, 'housekeeping_runs_total', 'job="grades-checkpoint",outcome="ok"')) >= 1);
  assert.ok((await metricValue(grades.url, 'housekeeping_removed_total', 'job="grades-backup",item="backups"')) >= 1);
  assert.equal(await metricValue(grades.url, 'housekeeping_runs_total', 'outcome="failed"'), 0);
});

test("events: the journal's backup is a readable copy with the topic just published", async (t) => {
  const registry = await startRegistry();
  const dataDir = tempDir('events-housekeeping-');
  const events = await startProcess('cmd/events.ts', { env: { REGISTRY_URL: registry.url, DATA_DIR: dataDir, ...EVERY_SECOND } });
  t.after(() => Promise.all([events.stop(), registry.stop()]));

  const published = await fetch(`${events.url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'hk.backup', payload: { n: 1 } }) });
  assert.equal(published.status, 202, await published.text());
  await waitFor(() => backupHolding(dataDir, 'events', (db) => db.prepare(`SELECT seq FROM topics WHERE topic = 'hk.backup'`).get() !== undefined), 'a journal backup with the topic', 30_000);
  // The file appears (renamed into place) a moment before its run is counted.
  await waitFor(async () => (await metricValue(events.url, 'housekeeping_runs_total', 'job="events-backup",outcome="ok"')) >= 1, 'the backup run counted', 30_000);
});
