/**
 * Retention of finished images (#18): real registry, storage and master. The test plays the worker
 * over HTTP (claim, upload the result, complete or fail) and makes some tasks old by moving their
 * times back in the master's own SQLite file, so the real default retention (7 days) is what decides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startMasterProc, startRegistry, startStorageProc, stopAll, submit, waitFor, waitForProviders, getJson } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';
import { runCli } from './cliRunner.ts';

const DAY = 86_400_000;

interface Claimed {
  id: number;
  imageKey: string;
  leaseToken: string;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Uploads one image and claims its task as a worker would. */
async function uploadAndClaim(masterUrl: string): Promise<Claimed> {
  const { status, body } = await submit(masterUrl, rgbaImage(8, 8).png);
  assert.equal(status, 201, JSON.stringify(body));
  const claim = await post(`${masterUrl}/tasks/claim`, { workerId: 'test-worker', waitMs: 5000 });
  assert.equal(claim.status, 200, JSON.stringify(claim.body));
  assert.equal(claim.body.id, body.id, 'the oldest pending task is the one just uploaded');
  return claim.body;
}

async function finish(masterUrl: string, storageUrl: string, task: Claimed): Promise<void> {
  const put = await fetch(`${storageUrl}/images/finished/${task.imageKey}`, { method: 'PUT', body: new Uint8Array(rgbaImage(8, 8).png), headers: { 'content-type': 'image/png' } });
  assert.equal(put.status, 201);
  const done = await post(`${masterUrl}/tasks/${task.id}/complete`, { leaseToken: task.leaseToken });
  assert.equal(done.status, 200, JSON.stringify(done.body));
}

/** Moves a task's times back by `ms` in the master's database (another connection; WAL lets both write). */
function age(masterDataDir: string, ids: number[], ms: number): void {
  const db = new Database(path.join(masterDataDir, 'tasks.sqlite'), { timeout: 5000 });
  try {
    const update = db.prepare('UPDATE tasks SET created_at = created_at - @ms, updated_at = updated_at - @ms, finished_at = finished_at - @ms WHERE id = @id');
    for (const id of ids) assert.equal(update.run({ id, ms }).changes, 1);
  } finally {
    db.close();
  }
}

async function imageStatus(storageUrl: string, state: string, key: string): Promise<number> {
  return (await fetch(`${storageUrl}/images/${state}/${key}`, { method: 'HEAD' })).status;
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((label) => l.includes(label)));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a retention run removes done and failed tasks older than 7 days and their images, and images no task owns, but nothing newer nor unfinished; /metrics counts it; the tasks database is backed up', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  // Every second, so the test waits for a condition rather than for the hour.
  const master = await startMasterProc(registry.url, { IMAGE_RETENTION_CRON: '* * * * * *', SQLITE_BACKUP_CRON: '* * * * * *', SQLITE_BACKUP_KEEP: '2' });
  t.after(() => stopAll(master, storage, registry));
  await waitForProviders(master, 'imagestorage');

  const oldDone = await uploadAndClaim(master.url);
  await finish(master.url, storage.url, oldDone);
  const oldFailed = await uploadAndClaim(master.url);
  assert.equal((await post(`${master.url}/tasks/${oldFailed.id}/fail`, { leaseToken: oldFailed.leaseToken, error: 'not decodable', retryable: false })).status, 200);
  const recentDone = await uploadAndClaim(master.url);
  await finish(master.url, storage.url, recentDone);
  const oldPending = (await submit(master.url, rgbaImage(8, 8).png)).body;

  // Images no task owns (an upload whose task was never created): one 8 days old, one 2 days old.
  const orphanPath = (id: string) => path.join(storage.dataDir, 'working', `${id}.png`);
  for (const [id, days] of [['orphan-old', 8], ['orphan-young', 2]] as const) {
    const put = await fetch(`${storage.url}/images/working/${id}`, { method: 'PUT', body: new Uint8Array(rgbaImage(8, 8).png), headers: { 'content-type': 'image/png' } });
    assert.equal(put.status, 201);
    const then = new Date(Date.now() - days * DAY);
    fs.utimesSync(orphanPath(id), then, then);
  }
  assert.equal((await getJson(`${storage.url}/images/working?before=soon`)).status, 400);

  age(master.dataDir, [oldDone.id, oldFailed.id], 8 * DAY);
  age(master.dataDir, [oldPending.id], 30 * DAY);
  age(master.dataDir, [recentDone.id], 6 * DAY);

  await waitFor(async () => (await getJson(`${master.url}/tasks/${oldDone.id}`)).status === 404 && (await getJson(`${master.url}/tasks/${oldFailed.id}`)).status === 404, 'the old tasks to go', 30_000);
  for (const state of ['working', 'finished']) {
    assert.equal(await imageStatus(storage.url, state, oldDone.imageKey), 404, `old done task's ${state} image removed`);
    assert.equal(await imageStatus(storage.url, state, oldFailed.imageKey), 404, `old failed task's ${state} image removed`);
    assert.equal(await imageStatus(storage.url, state, recentDone.imageKey), 200, `6-day-old task's ${state} image kept`);
  }
  await waitFor(async () => (await imageStatus(storage.url, 'working', 'orphan-old')) === 404, 'the old image with no task to go', 30_000);
  assert.equal(await imageStatus(storage.url, 'working', 'orphan-young'), 200, 'an image with no task younger than the retention stays');
  assert.equal((await getJson(`${master.url}/tasks/${recentDone.id}`)).body.state, 'done');
  assert.equal((await getJson(`${master.url}/tasks/${oldPending.id}`)).body.state, 'pending', 'a pending task stays, however old');
  const result = await fetch(`${master.url}/tasks/${recentDone.id}/result`);
  assert.equal(result.status, 200);

  const metrics = await (await fetch(`${master.url}/metrics`)).text();
  assert.ok(metric(metrics, 'housekeeping_runs_total', 'job="image-retention",outcome="ok"') >= 1, metrics);
  assert.equal(metric(metrics, 'housekeeping_removed_total', 'job="image-retention",item="tasks"'), 2);
  assert.equal(metric(metrics, 'housekeeping_removed_total', 'job="image-retention",item="images"'), 3, 'working + finished of the done task, working of the failed one');
  assert.equal(metric(metrics, 'housekeeping_removed_total', 'job="image-retention",item="orphans"'), 1);
  assert.match(master.output(), /housekeeping image-retention: removed 2 tasks, 3 images/);

  // The tasks database's online backup: a readable SQLite file with the kept tasks, at most SQLITE_BACKUP_KEEP of them.
  const backups = path.join(master.dataDir, 'backups');
  const readable = await waitFor(() => {
    const files = fs.existsSync(backups) ? fs.readdirSync(backups).filter((f) => /^tasks-.*\.sqlite$/.test(f)).sort() : [];
    for (const file of files.reverse()) {
      const db = new Database(path.join(backups, file), { readonly: true, fileMustExist: true });
      try {
        const ids = (db.prepare('SELECT id FROM tasks ORDER BY id').all() as { id: number }[]).map((r) => r.id);
        // Retention removes one task at a time, so a backup taken between its two removals holds one of them: wait for one after both.
        if (!ids.includes(oldDone.id) && !ids.includes(oldFailed.id) && ids.includes(recentDone.id)) return { file, ids };
      } finally {
        db.close();
      }
    }
    return undefined;
  }, 'a backup taken after the retention run', 30_000);
  assert.deepEqual(readable?.ids, [recentDone.id, oldPending.id]);
  await waitFor(async () => metric(await (await fetch(`${master.url}/metrics`)).text(), 'housekeeping_runs_total', 'job="tasks-backup",outcome="ok"') >= 3, 'three backups', 30_000);
  assert.ok(fs.readdirSync(backups).filter((f) => f.endsWith('.sqlite')).length <= 2, 'only the newest SQLITE_BACKUP_KEEP backups stay');
});

test('images prune --older-than: removes what finished before then at once; the route needs the token, refuses other sites and bad ages', async (t) => {
  const token = 'prune-secret';
  const registry = await startRegistry({ REGISTRY_TOKEN: token });
  const storage = await startStorageProc(registry.url, { REGISTRY_TOKEN: token });
  const master = await startMasterProc(registry.url, { REGISTRY_TOKEN: token, IMAGE_RETENTION_CRON: 'off' });
  t.after(() => stopAll(master, storage, registry));
  await waitForProviders(master, 'imagestorage');

  const twoHours = await uploadAndClaim(master.url);
  await finish(master.url, storage.url, twoHours);
  const halfHour = await uploadAndClaim(master.url);
  await finish(master.url, storage.url, halfHour);
  age(master.dataDir, [twoHours.id], 2 * 3_600_000);
  age(master.dataDir, [halfHour.id], 30 * 60_000);

  const noToken = await post(`${master.url}/tasks/prune`, {});
  assert.equal(noToken.status, 401);
  assert.equal(noToken.body.error.code, 'unauthorized');
  const crossSite = await post(`${master.url}/tasks/prune`, {}, { authorization: `Bearer ${token}`, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
  assert.equal(crossSite.status, 403);
  assert.equal(crossSite.body.error.code, 'cross_site');
  const badAge = await post(`${master.url}/tasks/prune`, { olderThan: 'soon' }, { authorization: `Bearer ${token}` });
  assert.equal(badAge.status, 400);
  assert.equal(badAge.body.error.code, 'invalid_prune');
  assert.equal((await getJson(`${master.url}/tasks/${twoHours.id}`)).status, 200, 'nothing removed by refused calls');

  const env = { REGISTRY_URL: registry.url, REGISTRY_TOKEN: token };
  const wrong = await runCli(['images', 'prune', '--older-than', 'soon'], env);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /--older-than must be a duration/);

  const pruned = await runCli(['images', 'prune', '--older-than', '1h'], env);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /removed 1 tasks and 2 images \(finished more than 1h ago\)/);
  assert.equal((await getJson(`${master.url}/tasks/${twoHours.id}`)).status, 404);
  assert.equal(await imageStatus(storage.url, 'finished', twoHours.imageKey), 404);
  assert.equal((await getJson(`${master.url}/tasks/${halfHour.id}`)).body.state, 'done');
  assert.equal(await imageStatus(storage.url, 'finished', halfHour.imageKey), 200);

  const again = await runCli(['--json', 'images', 'prune'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), { olderThanMs: 7 * DAY, removed: { tasks: 0, images: 0, orphans: 0 } }, 'the default is the 7-day retention');
});
