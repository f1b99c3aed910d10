import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, stopAll, submit, waitForTask, getJson, waitFor, waitForProviders } from './fixtures/pipeline.ts';
import { allKinds, encodeKind, firstMismatch, rgbaImage } from './fixtures/pngs.ts';
import { OPS } from '../imageservice/ops.ts';
import { PNG } from 'pngjs';
import fs from 'node:fs';

for (const codec of ['sharp', 'pngjs']) test(`every PNG kind (colour types, 1-16 bits, tRNS, interlaced) through master, storage and a worker (IMAGE_CODEC=${codec}), pixel-exact, for every op`, async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '2'], { IMAGE_CODEC: codec });
  t.after(() => stopAll(worker, master, storage, registry));

  const kinds = allKinds();
  const submitted: { id: number; kind: (typeof kinds)[number]; op: (typeof OPS)[number] }[] = [];
  for (const kind of kinds) {
    for (const op of OPS) {
      const res = await submit(master.url, encodeKind(kind), op);
      assert.equal(res.status, 201, `${kind.name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.state, 'pending');
      assert.equal(res.body.op, op);
      submitted.push({ id: res.body.id, kind, op });
    }
  }
  for (const { id, kind, op } of submitted) {
    const task = await waitForTask(master.url, id);
    assert.equal(task.state, 'done', `${kind.name} ${op}: ${task.error}`);
    const result = await fetch(`${master.url}/tasks/${id}/result`);
    assert.equal(result.status, 200);
    const png = Buffer.from(await result.arrayBuffer());
    assert.equal(firstMismatch(kind, op, png), undefined, `${kind.name} ${op}`);
    // Alpha is kept exactly when the input had it (a channel or tRNS); 16-bit stays 16-bit.
    const hadAlpha = kind.colorType === 4 || kind.colorType === 6 || Boolean(kind.trns);
    assert.equal(png[25] === 4 || png[25] === 6, hadAlpha, `${kind.name} ${op}: output colour type ${png[25]}`);
    assert.equal(png[24], kind.bitDepth === 16 ? 16 : 8);
  }
  const metrics = await (await fetch(`${worker.url}/metrics`)).text();
  assert.match(metrics, new RegExp(`imageworker_tasks_total\\{result="done"[^}]*\\} ${submitted.length}`));
  assert.match(metrics, /imageworker_transform_seconds_count/);
  const list = await getJson(`${master.url}/tasks?state=done&limit=1000`);
  assert.equal(list.body.tasks.length, submitted.length);
  assert.equal(list.body.counts.done, submitted.length);
  const workers = (await getJson(`${registry.url}/services?name=imageworker`)).body.instances as { metadata?: Record<string, string> }[];
  assert.equal(workers[0]?.metadata?.codec, codec, 'the worker says which codec it runs');
  assert.equal(workers[0]?.metadata?.nice, '10');
  if (process.platform === 'linux') {
    // Every thread, the pool's and the codec's (made after the start) included, transforms at the default nice 10.
    const stat = (tid: string) => fs.readFileSync(`/proc/${worker.child.pid}/task/${tid}/stat`, 'utf8');
    // A thread may end between the listing and the read (libvips lets idle ones go): those have no nice to check.
    const threads = fs.readdirSync(`/proc/${worker.child.pid}/task`).flatMap((tid) => { try { return [stat(tid)]; } catch { return []; } });
    const nice = threads.map((line) => Number(line.slice(line.lastIndexOf(')') + 2).split(' ')[16]));
    assert.ok(threads.length > 4, `the pool's threads exist: ${threads.length}`);
    assert.deepEqual(nice.filter((n) => n !== 10), [], `threads not at nice 10 among ${nice.length}`);
  }
});

test('a worker claims one task ahead (--prefetch 1): a second task is held while its only thread transforms', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '1', '--prefetch', '1']);
  t.after(() => stopAll(worker, master, storage, registry));

  // Noise doesn't compress: each image takes one thread a good fraction of a second.
  const noise = (seed: number) => {
    const data = Buffer.alloc(1024 * 768 * 4);
    let state = seed;
    for (let i = 0; i < data.length; i++) data[i] = (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) >>> 24;
    return PNG.sync.write({ width: 1024, height: 768, data } as unknown as PNG, { deflateLevel: 1 });
  };
  const images = [1, 2, 3, 4].map(noise);
  const ids: number[] = [];
  for (const png of images) ids.push((await submit(master.url, png)).body.id);
  const runningCount = async () => (await getJson(`${master.url}/tasks?state=running&limit=10`)).body.counts.running as number;
  await waitFor(async () => (await runningCount()) === 2, 'two tasks held by the one-thread worker');
  const running = (await getJson(`${master.url}/tasks?state=running&limit=10`)).body.tasks as { workerId: string }[];
  assert.ok(running.length <= 2, `at most one thread's task and one ahead: ${running.length}`);
  for (const id of ids) assert.equal((await waitForTask(master.url, id)).state, 'done');
});

test('a worker started before any master waits for one quietly, then claims: no warning (the launcher starts it beside the master)', async (t) => {
  const registry = await startRegistry();
  let storage: Awaited<ReturnType<typeof startStorageProc>> | undefined;
  let master: Awaited<ReturnType<typeof startMasterProc>> | undefined;
  const worker = await startWorkerProc(registry.url);
  t.after(() => stopAll(worker, master, storage, registry));
  await waitFor(() => /waiting for an imagemaster to register before claiming tasks/.test(worker.output()), 'the worker to say what it waits for');
  storage = await startStorageProc(registry.url);
  master = await startMasterProc(registry.url);
  await waitForProviders(master, 'imagestorage');
  const res = await submit(master.url, rgbaImage(8, 8).png, 'invert');
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const task = await waitForTask(master.url, res.body.id);
  assert.equal(task.state, 'done', task.error);
  assert.doesNotMatch(worker.output(), / warn /, 'the worker warned while it waited');
});
