import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, stopAll, submit, waitFor, getJson, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch } from './fixtures/pngs.ts';

function counter(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('100 images with two workers: each done exactly once', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const workers = [await startWorkerProc(registry.url, ['--concurrency', '2']), await startWorkerProc(registry.url, ['--concurrency', '2'])];
  t.after(() => stopAll(...workers, master, storage, registry));
  await waitForProviders(master, 'imagestorage');

  const images = Array.from({ length: 100 }, (_, i) => rgbaImage(32 + (i % 7), 24, i));
  const ids = await Promise.all(
    images.map(async ({ png }, i) => {
      const res = await submit(master.url, png, i % 2 ? 'grayscale' : 'swap-rb');
      assert.equal(res.status, 201);
      return res.body.id as number;
    }),
  );
  assert.equal(new Set(ids).size, 100);
  await waitFor(async () => (await getJson(`${master.url}/tasks?state=done&limit=1000`)).body.tasks.length === 100, 'all 100 done', 120_000, 200);

  const { body } = await getJson(`${master.url}/tasks?limit=1000`);
  assert.deepEqual(body.counts, { pending: 0, running: 0, done: 100, failed: 0 });
  for (const task of body.tasks) assert.equal(task.attempts, 1, `task ${task.id} took ${task.attempts} attempts`);
  const byId = new Map(ids.map((id, i) => [id, i]));
  for (const id of ids.filter((_, i) => i % 10 === 0)) {
    const i = byId.get(id)!;
    const png = Buffer.from(await (await fetch(`${master.url}/tasks/${id}/result`)).arrayBuffer());
    assert.equal(firstMismatch(images[i].kind, i % 2 ? 'grayscale' : 'swap-rb', png), undefined);
  }
  // Exactly once: 100 completions at the master, none refused or repeated, and the workers' counts add up to 100.
  const masterMetrics = await (await fetch(`${master.url}/metrics`)).text();
  assert.equal(counter(masterMetrics, 'imagemaster_completions_total', 'outcome="completed"'), 100);
  for (const outcome of ['already_completed', 'already_done', 'lease_expired']) {
    assert.equal(counter(masterMetrics, 'imagemaster_completions_total', `outcome="${outcome}"`), 0, outcome);
  }
  const done = await Promise.all(workers.map(async (w) => counter(await (await fetch(`${w.url}/metrics`)).text(), 'imageworker_tasks_total', 'result="done"')));
  assert.equal(done[0] + done[1], 100);
  assert.ok(done[0] > 0 && done[1] > 0, `both workers took part: ${done}`);

  // SIGTERM: each worker deregisters and exits 0.
  for (const w of workers) assert.equal(await w.stop('SIGTERM'), 0);
  await waitFor(async () => (await getJson(`${registry.url}/services?name=imageworker`)).body.instances.length === 0, 'workers deregistered');
});
