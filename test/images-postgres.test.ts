import { test } from 'node:test';
import assert from 'node:assert/strict';
import { skipUnlessEngine, startPostgres } from '../harness/postgres.ts';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, stopAll, submit, waitFor, getJson, waitForProviders } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch, type PngKind } from './fixtures/pngs.ts';
import { OPS, type Op } from '../imageservice/ops.ts';
import type { Proc } from './helpers.ts';
import { TASK_MIGRATIONS } from '../imageservice/master/pgSchema.ts';

/** Images in the big run: small (16x16) so that the run measures the tasks, not the pixels. */
const N = Number(process.env.PG_PIPELINE_IMAGES ?? 2000);
// Info, not debug: the harness waits for the "listening on" line, which is info.
const QUIET = { LOG_LEVEL: 'info' };

function counter(metrics: string, name: string, labels: string): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

const metricsOf = async (proc: Proc) => (await fetch(`${proc.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();

async function post(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Runs `work` over items with at most `limit` at once. */
async function pooled<T>(items: T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index], index);
    }
  }));
}

test('a claim waiting at master B gets a task uploaded to master A at once (LISTEN/NOTIFY, not the poll)', { skip: skipUnlessEngine('postgres') }, async (t) => {
  const pg = await startPostgres();
  const procs: Proc[] = [];
  t.after(async () => {
    await stopAll(...procs);
    await pg.stop();
  });
  const url = await pg.createDatabase('wake');
  const registry = await startRegistry();
  procs.push(registry);
  const storage = await startStorageProc(registry.url, QUIET);
  procs.push(storage);
  // A backstop poll of a minute: only the notification can explain a wake within seconds.
  const env = { ...QUIET, TASK_STORE: 'postgres', DATABASE_URL: url, TASK_POLL_MS: '60000' };
  const [a, b] = await Promise.all([startMasterProc(registry.url, env), startMasterProc(registry.url, env)]);
  procs.push(a, b);
  await waitForProviders(a, 'imagestorage');
  for (let round = 0; round < 3; round++) {
    const waiting = post(`${b.url}/tasks/claim`, { workerId: `probe-${round}`, waitMs: 30_000 });
    await waitFor(async () => counter(await metricsOf(b), 'imagemaster_claims_waiting', '') === 1, 'the claim to wait at B');
    const uploaded = await submit(a.url, rgbaImage(16, 16, round).png, 'invert');
    assert.equal(uploaded.status, 201);
    const started = Date.now();
    const claimed = await waiting;
    const waitedMs = Date.now() - started;
    assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
    assert.equal(claimed.body.id, uploaded.body.id);
    assert.ok(waitedMs < 10_000, `the claim at B waited ${waitedMs} ms`);
    // Completed through the other master: one store.
    assert.equal((await post(`${a.url}/tasks/${claimed.body.id}/complete`, { leaseToken: claimed.body.leaseToken })).status, 200);
  }
  const { body } = await getJson(`${b.url}/tasks`);
  assert.deepEqual(body.counts, { pending: 0, running: 0, done: 3, failed: 0 });
});

test(`two masters on one PostgreSQL, four workers, ${N} images: each done exactly once and pixel-exact, through a kill -9 of a master and a restart of PostgreSQL`, { skip: skipUnlessEngine('postgres') }, async (t) => {
  const began = Date.now();
  const pg = await startPostgres();
  const procs: Proc[] = [];
  t.after(async () => {
    await stopAll(...procs);
    await pg.stop();
  });
  const url = await pg.createDatabase('pipeline');
  const registry = await startRegistry();
  procs.push(registry);
  const storage = await startStorageProc(registry.url, QUIET);
  procs.push(storage);
  const env = { ...QUIET, TASK_STORE: 'postgres', DATABASE_URL: url, LEASE_MS: '3000', PG_CONNECT_TIMEOUT_MS: '1000', PG_QUERY_TIMEOUT_MS: '3000' };
  // Started at once: the two migrations take turns under the advisory lock.
  let [a, b] = await Promise.all([startMasterProc(registry.url, env), startMasterProc(registry.url, env)]);
  procs.push(a, b);
  const workers: Proc[] = [];
  assert.equal(pg.sql(`SELECT count(*) FROM schema_migrations WHERE component = 'imagemaster'`, 'pipeline').trim(), String(TASK_MIGRATIONS.length));
  await Promise.all([waitForProviders(a, 'imagestorage'), waitForProviders(b, 'imagestorage')]);

  const expected = new Map<number, { kind: PngKind; op: Op }>();
  const upload = async (master: Proc, i: number) => {
    const op = OPS[i % OPS.length];
    const { png, kind } = rgbaImage(16, 16, i);
    const res = await submit(master.url, png, op);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.ok(!expected.has(res.body.id), `id ${res.body.id} handed out twice`);
    expected.set(res.body.id, { kind, op });
    return res.body.id as number;
  };

  // Leases a stale worker will hold when master A dies: claimed at A before any worker runs.
  const stale: { id: number; leaseToken: string }[] = [];
  for (let i = 0; i < 4; i++) {
    const id = await upload(a, N + i);
    const claimed = await post(`${a.url}/tasks/claim`, { workerId: 'stale-worker', waitMs: 0 });
    assert.equal(claimed.body.id, id);
    stale.push(claimed.body);
  }

  // The stale worker renews through A as long as A lives.
  const renewals = setInterval(() => {
    for (const { id, leaseToken } of stale) void post(`${a.url}/tasks/${id}/renew`, { leaseToken }).catch(() => undefined);
  }, 500);
  t.after(() => clearInterval(renewals));

  workers.push(...(await Promise.all(Array.from({ length: 4 }, () => startWorkerProc(registry.url, ['--concurrency', '2'], QUIET)))));
  procs.push(...workers);
  await Promise.all(workers.map((w) => waitForProviders(w, 'imagemaster', 2)));

  // N images, alternately to each master.
  const uploadStart = Date.now();
  await pooled(Array.from({ length: N }, (_, i) => i), 16, async (i) => void (await upload(i % 2 ? b : a, i)));
  const uploadSeconds = (Date.now() - uploadStart) / 1000;
  const counts = async (master: Proc) => (await getJson(`${master.url}/tasks?limit=1`)).body.counts;

  // kill -9 master A while tasks are leased (the stale worker's at least, and its workers' in flight).
  for (const { id } of stale) assert.equal((await getJson(`${b.url}/tasks/${id}`)).body.workerId, 'stale-worker');
  await a.stop('SIGKILL');
  clearInterval(renewals);
  const total = N + stale.length;
  await waitFor(async () => (await counts(b)).done === total, `all ${total} tasks done through master B`, 180_000, 250);
  const doneSeconds = (Date.now() - uploadStart) / 1000;
  assert.deepEqual(await counts(b), { pending: 0, running: 0, done: total, failed: 0 });

  // The stale worker comes back: every late call is refused (409) and changes nothing.
  for (const { id, leaseToken } of stale) {
    const before = (await getJson(`${b.url}/tasks/${id}`)).body;
    const late = await post(`${b.url}/tasks/${id}/complete`, { leaseToken, resultBytes: 1 });
    assert.equal(late.status, 409, JSON.stringify(late.body));
    assert.equal(late.body.error.code, 'already_done');
    assert.equal((await post(`${b.url}/tasks/${id}/renew`, { leaseToken })).status, 409);
    assert.equal((await post(`${b.url}/tasks/${id}/fail`, { leaseToken, error: 'late', retryable: true })).status, 409);
    assert.deepEqual((await getJson(`${b.url}/tasks/${id}`)).body, before);
  }

  // Exactly once: the workers' completions add up to the tasks done, and every id in the database is one we uploaded.
  const workerDone = async () => (await Promise.all(workers.map(async (w) => counter(await metricsOf(w), 'imageworker_tasks_total', 'result="done"')))).reduce((x, y) => x + y, 0);
  // (Counted by a worker once the master's answer is back, a moment after the database says done.)
  await waitFor(async () => (await workerDone()) === total, `the workers to count ${total} done`, 10_000);
  const doneIds = pg.sql(`SELECT string_agg(id::text, ',' ORDER BY id) FROM tasks WHERE state = 'done'`, 'pipeline').trim().split(',').map(Number);
  assert.equal(doneIds.length, total);
  assert.deepEqual(doneIds, [...expected.keys()].sort((x, y) => x - y));

  // Every result pixel-exact.
  await pooled([...expected], 16, async ([id, { kind, op }]) => {
    const res = await fetch(`${b.url}/tasks/${id}/result`, { signal: AbortSignal.timeout(30_000) });
    assert.equal(res.status, 200, `task ${id}`);
    assert.equal(firstMismatch(kind, op, Buffer.from(await res.arrayBuffer())), undefined, `task ${id} (${op})`);
  });

  // A second master again, then PostgreSQL restarts during uploads: 503 with Retry-After meanwhile, then by themselves again.
  a = await startMasterProc(registry.url, env);
  procs.push(a);
  await waitForProviders(a, 'imagestorage');
  const acknowledged = new Set<number>();
  const statuses = new Map<number, number>();
  let unavailable: { retryAfter: string | null; body: any } | undefined;
  let stopUploads = false;
  let afterRestart = { a: 0, b: 0 };
  let restarted = false;
  const uploader = async (master: Proc, which: 'a' | 'b', seed: number) => {
    for (let i = 0; !stopUploads; i++) {
      const res = await fetch(`${master.url}/tasks?op=invert`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(rgbaImage(16, 16, seed + i).png), signal: AbortSignal.timeout(30_000) });
      const body = await res.json();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 201) {
        acknowledged.add(body.id);
        expected.set(body.id, { kind: rgbaImage(16, 16, seed + i).kind, op: 'invert' });
        if (restarted) afterRestart[which]++;
      } else if (res.status === 503) {
        unavailable ??= { retryAfter: res.headers.get('retry-after'), body };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const uploads = Promise.all([uploader(a, 'a', 100_000), uploader(b, 'b', 200_000), uploader(a, 'a', 300_000), uploader(b, 'b', 400_000)]);
  await waitFor(() => acknowledged.size >= 20, 'uploads before the restart', 30_000);
  await pg.kill();
  await waitFor(() => unavailable, 'a 503 while PostgreSQL is down', 30_000);
  await pg.restart();
  restarted = true;
  await waitFor(() => afterRestart.a >= 5 && afterRestart.b >= 5, 'both masters to take uploads again after the restart', 60_000, 100);
  stopUploads = true;
  await uploads;
  assert.equal(unavailable!.retryAfter, '1');
  assert.equal(unavailable!.body.error.code, 'database_unavailable');
  assert.deepEqual([...statuses.keys()].filter((s) => s !== 201 && s !== 503), [], `statuses: ${JSON.stringify([...statuses])}`);

  // Nothing acknowledged is lost: each is done, pixel-exact, and nothing is left pending, running or failed.
  await waitFor(async () => {
    const now = await counts(a);
    return now.pending === 0 && now.running === 0 ? now : undefined;
  }, 'the uploads during the restart to be done', 120_000, 250);
  assert.equal((await counts(b)).failed, 0);
  await pooled([...acknowledged], 16, async (id) => {
    const task = (await getJson(`${a.url}/tasks/${id}`)).body;
    assert.equal(task.state, 'done', `task ${id}`);
    const res = await fetch(`${b.url}/tasks/${id}/result`, { signal: AbortSignal.timeout(30_000) });
    assert.equal(firstMismatch(expected.get(id)!.kind, 'invert', Buffer.from(await res.arrayBuffer())), undefined, `task ${id}`);
  });
  // The database says done when the master has written it; the worker counts it once the answer is back.
  const doneInDb = (await counts(b)).done;
  await waitFor(async () => (await workerDone()) === doneInDb, `the workers to count ${doneInDb} done`, 10_000);
  t.diagnostic(`${N} images: uploaded in ${uploadSeconds.toFixed(1)} s, all done after ${doneSeconds.toFixed(1)} s; ` +
    `${acknowledged.size} uploads across the restart (${statuses.get(503) ?? 0} answered 503); whole test ${((Date.now() - began) / 1000).toFixed(1)} s`);
});
