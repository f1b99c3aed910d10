/**
 * Bulk jobs (#17) on the PostgreSQL task store with two masters on one database: a job made through one is the
 * other's too, a pause through one holds the claims of both, an idempotency key is one task whichever master
 * answers, and a resume through the other releases them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { skipUnlessEngine, startPostgres } from '../harness/postgres.ts';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, stopAll, getJson, tempDir, submit, waitForTask } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';
import { runCli } from './cliRunner.ts';

test('jobs on PostgreSQL with two masters: shared jobs, pause holds both, one task per key, resume through the other', { skip: skipUnlessEngine('postgres') }, async (t) => {
  const pg = await startPostgres();
  t.after(() => pg.stop());
  const env = { TASK_STORE: 'postgres', DATABASE_URL: await pg.createDatabase('jobs') };
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const [a, b] = await Promise.all([startMasterProc(registry.url, env), startMasterProc(registry.url, env)]);
  let worker: Awaited<ReturnType<typeof startWorkerProc>> | undefined;
  t.after(() => stopAll(worker, a, b, storage, registry));

  const dir = tempDir('jobs-pg-');
  const folder = path.join(dir, 'ten');
  fs.mkdirSync(folder);
  for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(folder, `t${i}.png`), rgbaImage(12, 12, i + 1).png);
  const cli = ['images', 'submit', folder, '--job', 'on-pg', '--op', 'grayscale', '--out', path.join(dir, 'out'), '--state', path.join(dir, 'state')];
  const uploaded = await runCli(['--json', ...cli, '--no-wait'], { REGISTRY_URL: registry.url });
  assert.equal(uploaded.code, 0, uploaded.stderr);
  const jobId = JSON.parse(uploaded.stdout.split('\n').find((l) => l.includes('"event":"job"'))!).id as number;

  const paused = await fetch(`${a.url}/jobs/${jobId}/pause`, { method: 'POST' });
  assert.equal(paused.status, 200);
  const seenByB = (await getJson(`${b.url}/jobs/${jobId}`)).body;
  assert.equal(seenByB.state, 'paused');
  assert.equal(seenByB.counts.pending, 10);

  // The same key through the other master: the job's task, not a new one.
  const [first] = (await getJson(`${b.url}/jobs/${jobId}/tasks`)).body.tasks;
  const again = await fetch(`${b.url}/tasks?job=${jobId}`, { method: 'POST', headers: { 'content-type': 'image/png', 'idempotency-key': first.idempotencyKey }, body: new Uint8Array(rgbaImage(12, 12, 1).png) });
  assert.equal(again.status, 200);
  assert.equal(((await again.json()) as { id: number }).id, first.id);

  // A worker claiming through either master takes other work, never the paused job's.
  worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  for (const master of [a, b]) {
    const other = await submit(master.url, rgbaImage(6, 6, 77).png);
    await waitForTask(master.url, other.body.id, ['done']);
  }
  assert.deepEqual((await getJson(`${a.url}/jobs/${jobId}`)).body.counts, { pending: 10, running: 0, done: 0, failed: 0 });

  const resumed = await fetch(`${b.url}/jobs/${jobId}/resume`, { method: 'POST' });
  assert.equal(resumed.status, 200);
  const finished = await runCli(cli, { REGISTRY_URL: registry.url });
  assert.equal(finished.code, 0, finished.stderr);
  assert.match(finished.stdout, /10 done, 0 failed, 0 skipped/);
  assert.equal((await getJson(`${a.url}/tasks?limit=1000`)).body.tasks.length, 12, 'the 10 of the job and the 2 others, none twice');

  // Cancel through one master: the other sees the job cancelled and its pending task failed with the reason.
  const made = (await (await fetch(`${a.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'doomed' }) })).json()) as { id: number; op: string };
  assert.equal(made.op, 'swap-rg');
  await fetch(`${a.url}/jobs/${made.id}/pause`, { method: 'POST' });
  const up = await fetch(`${a.url}/tasks?job=${made.id}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(rgbaImage(5, 5, 5).png) });
  assert.equal(up.status, 201);
  const cancelled = (await (await fetch(`${a.url}/jobs/${made.id}`, { method: 'DELETE' })).json()) as { state: string; cancelledTasks: number };
  assert.deepEqual([cancelled.state, cancelled.cancelledTasks], ['cancelled', 1]);
  const view = (await getJson(`${b.url}/jobs/${made.id}`)).body;
  assert.equal(view.state, 'cancelled');
  assert.equal(view.counts.failed, 1);
  assert.equal((await getJson(`${b.url}/jobs/${made.id}/tasks`)).body.tasks[0].error, 'cancelled: its job was cancelled');
});
