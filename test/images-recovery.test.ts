import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMasterWithStorage, startRegistry, startStorageProc, startMasterProc, startWorkerProc, stopAll, submit, waitForTask, waitFor, getJson, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch } from './fixtures/pngs.ts';

test('a worker killed with SIGKILL mid-task: another worker finishes the task once the lease lapses', async (t) => {
  const { registry, master } = await startMasterWithStorage(t, { LEASE_MS: '2000' });
  const { png, kind } = rgbaImage(1200, 900, 9);
  const { body: task } = await submit(master.url, png, 'invert');

  const doomed = await startWorkerProc(registry.url, ['--concurrency', '1']);
  t.after(() => stopAll(doomed));
  const running = await waitFor(async () => {
    const { body } = await getJson(`${master.url}/tasks/${task.id}`);
    return body.state === 'running' ? body : undefined;
  }, 'the first worker to claim the task', 30_000, 10);
  assert.equal(doomed.child.kill('SIGKILL'), true);
  const killedAt = Date.now();
  await doomed.exited;
  assert.notEqual((await getJson(`${master.url}/tasks/${task.id}`)).body.state, 'done', 'killed before it finished');

  const rescuer = await startWorkerProc(registry.url, ['--concurrency', '1']);
  t.after(() => stopAll(rescuer));
  const done = await waitForTask(master.url, task.id, ['done', 'failed'], 60_000);
  assert.equal(done.state, 'done');
  assert.equal(done.attempts, 2);
  assert.notEqual(done.workerId, running.workerId);
  // Bounded by the lease (2 s) plus one transform on a busy machine, not by a fixed 120 s detection.
  assert.ok(Date.now() - killedAt < 45_000);
  const result = Buffer.from(await (await fetch(`${master.url}/tasks/${task.id}/result`)).arrayBuffer());
  assert.equal(firstMismatch(kind, 'invert', result), undefined);
});

test('master and storage restarts lose nothing, and task ids are never reused', async (t) => {
  const registry = await startRegistry();
  let storage = await startStorageProc(registry.url);
  let master = await startMasterProc(registry.url);
  t.after(() => stopAll(master, storage, registry));
  await waitForProviders(master, 'imagestorage');
  const images = [1, 2, 3, 4, 5].map((seed) => rgbaImage(24, 16, seed));
  const ids: number[] = [];
  for (const { png } of images.slice(0, 3)) ids.push((await submit(master.url, png)).body.id);

  // The master dies hard and comes back on the same data: every task is there, and new ids continue.
  master.child.kill('SIGKILL');
  await master.exited;
  master = await startMasterProc(registry.url, {}, master.dataDir);
  await waitForProviders(master, 'imagestorage');
  const listed = (await getJson(`${master.url}/tasks?state=pending`)).body.tasks.map((task: { id: number }) => task.id).sort();
  assert.deepEqual(listed, [...ids].sort());
  ids.push((await submit(master.url, images[3].png)).body.id);
  assert.ok(ids[3] > Math.max(...ids.slice(0, 3)), `id ${ids[3]} after ${ids.slice(0, 3)}`);

  // Storage goes away while a worker is waiting for work; the worker backs off and finishes once it is back.
  assert.equal(await storage.stop('SIGTERM'), 0);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  t.after(() => stopAll(worker));
  await waitFor(async () => (await getJson(`${master.url}/tasks/${ids[0]}`)).body.state === 'running', 'a claim while storage is away', 30_000);
  storage = await startStorageProc(registry.url, {}, storage.dataDir);
  for (const id of ids) assert.equal((await waitForTask(master.url, id)).state, 'done', `task ${id}`);

  // A restart after everything is done: results still there, ids still never reused.
  await master.stop('SIGTERM');
  master = await startMasterProc(registry.url, {}, master.dataDir);
  await waitForProviders(master, 'imagestorage');
  for (const [i, id] of ids.entries()) {
    const res = await fetch(`${master.url}/tasks/${id}/result`);
    assert.equal(res.status, 200);
    assert.equal(firstMismatch(images[i].kind, 'swap-rg', Buffer.from(await res.arrayBuffer())), undefined);
  }
  const last = (await submit(master.url, images[4].png)).body.id;
  assert.ok(last > Math.max(...ids));
  assert.equal(new Set([...ids, last]).size, ids.length + 1);
});

test('SIGTERM: a worker finishes the task it holds within the grace period, or releases it after; it deregisters and exits 0', async (t) => {
  const { registry, master } = await startMasterWithStorage(t, { LEASE_MS: '60000' });
  const { png } = rgbaImage(1000, 800, 4);
  const running = async (id: number) =>
    waitFor(async () => (await getJson(`${master.url}/tasks/${id}`)).body.state === 'running', `task ${id} running`, 30_000, 10);

  // With a grace period: the held task is finished before the exit.
  const { body: first } = await submit(master.url, png);
  const patient = await startWorkerProc(registry.url, ['--concurrency', '1']);
  t.after(() => stopAll(patient));
  await running(first.id);
  assert.equal(await patient.stop('SIGTERM', 60_000), 0);
  assert.equal((await getJson(`${master.url}/tasks/${first.id}`)).body.state, 'done');

  // Without one: the task is released at once (not counted as an attempt) rather than left to its 60 s lease.
  const { body: second } = await submit(master.url, png);
  const hasty = await startWorkerProc(registry.url, ['--concurrency', '1'], { SHUTDOWN_GRACE_MS: '0' });
  t.after(() => stopAll(hasty));
  await running(second.id);
  assert.equal(await hasty.stop('SIGTERM', 30_000), 0);
  const released = (await getJson(`${master.url}/tasks/${second.id}`)).body;
  assert.equal(released.state, 'pending');
  assert.equal(released.attempts, 0);
  await waitFor(async () => (await getJson(`${registry.url}/services?name=imageworker`)).body.instances.length === 0, 'workers deregistered');
});
