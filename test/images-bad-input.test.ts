import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { startMasterWithStorage, startWorkerProc, stopAll, submit, waitForTask, getJson, waitFor } from './fixtures/pipeline.ts';
import { rgbaImage, chunk, ihdr, noisePng } from './fixtures/pngs.ts';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const post = (url: string, body: object) =>
  getJson(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const storedImages = (dir: string) => fs.readdirSync(path.join(dir, 'working')).length;

test('bad uploads fail at once with their reason and store nothing; an undecodable image fails once, never retried', async (t) => {
  const { registry, storage, master } = await startMasterWithStorage(t, { MAX_PIXELS: '1000000', MAX_UPLOAD_BYTES: String(512 * 1024) });
  const { png } = rgbaImage(40, 30);

  const refusals: [string, Buffer, number, string, RegExp][] = [
    ['not a PNG', Buffer.from('GIF89a this is not a png at all'), 415, 'not_png', /not a PNG/],
    ['empty body', Buffer.alloc(0), 415, 'not_png', /empty/],
    ['truncated in the middle', png.subarray(0, Math.floor(png.length / 2)), 400, 'truncated_png', /truncated/],
    ['truncated in the header', png.subarray(0, 20), 400, 'truncated_png', /truncated/],
    ['no IEND', png.subarray(0, png.length - 12), 400, 'truncated_png', /truncated/],
    ['huge dimensions', Buffer.concat([SIGNATURE, ihdr(100_000, 100_000, 8, 6), chunk('IDAT', zlib.deflateSync(Buffer.alloc(10))), chunk('IEND')]), 413, 'image_too_large', /100000x100000.*limit/],
    ['just over MAX_PIXELS', Buffer.concat([SIGNATURE, ihdr(1001, 1000, 8, 2), chunk('IEND')]), 413, 'image_too_large', /1001x1000/],
    ['corrupt header checksum', Buffer.concat([png.subarray(0, 29), Buffer.from([0, 0, 0, 0]), png.subarray(33)]), 415, 'invalid_png', /checksum/],
    ['bad colour type and depth', Buffer.concat([SIGNATURE, ihdr(10, 10, 3, 2), chunk('IEND')]), 415, 'invalid_png', /bit depth 3/],
    ['larger than MAX_UPLOAD_BYTES', Buffer.concat([png, Buffer.alloc(600 * 1024)]), 413, 'payload_too_large', /limit/],
  ];
  // Refused once storage has begun to receive them: the master abandons the write, and storage keeps nothing.
  const large = noisePng(256, 256);
  assert.ok(large.length > 200_000, `${large.length} bytes`);
  const lastIdat = large.lastIndexOf('IDAT') - 4;
  const corruptLate = Buffer.from(large);
  corruptLate[large.length - 40] ^= 0xff;
  refusals.push(
    ['a large one with a bad checksum near its end', corruptLate, 415, 'invalid_png', new RegExp(`checksum of chunk IDAT at byte ${lastIdat}`)],
    ['a large one cut short before IEND', large.subarray(0, large.length - 100), 400, 'truncated_png', /truncated/],
  );
  for (const [what, body, status, code, words] of refusals) {
    const res = await submit(master.url, body);
    assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, code, what);
    assert.match(res.body.error.message, words, what);
  }
  // A huge image is refused on its header alone: the rest of the body is never needed.
  const headerOnly = await submit(master.url, Buffer.concat([SIGNATURE, ihdr(60_000, 60_000, 16, 6)]));
  assert.equal(headerOnly.status, 413);
  const badOp = await submit(master.url, png, 'sepia');
  assert.equal(badOp.status, 400);
  assert.match(badOp.body.error.message, /swap-rg/);
  assert.equal(storedImages(storage.dataDir), 0, 'nothing refused reached storage');
  // The abandoned writes leave no temporary file, and storage says why at info, not as an error.
  await waitFor(() => fs.readdirSync(path.join(storage.dataDir, 'tmp')).length === 0, 'storage to drop the abandoned writes');
  assert.doesNotMatch(storage.output(), /\berror\b.*unhandled|ERROR/i);
  assert.equal((await getJson(`${master.url}/tasks`)).body.tasks.length, 0, 'nothing refused became a task');
  const metrics = await (await fetch(`${master.url}/metrics`)).text();
  assert.match(metrics, /imagemaster_uploads_rejected_total\{code="not_png"/);

  // A PNG whose structure is sound but whose pixels can't be decoded: accepted, then failed once with the reason.
  const undecodable = Buffer.concat([SIGNATURE, ihdr(8, 8, 8, 6), chunk('IDAT', Buffer.from('definitely not zlib data')), chunk('IEND')]);
  const accepted = await submit(master.url, undecodable);
  assert.equal(accepted.status, 201);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '1']);
  t.after(() => stopAll(worker));
  const failed = await waitForTask(master.url, accepted.body.id, ['failed', 'done'], 30_000);
  assert.equal(failed.state, 'failed');
  assert.equal(failed.attempts, 1);
  assert.match(failed.error, /cannot be decoded/);
  const result = await getJson(`${master.url}/tasks/${failed.id}/result`);
  assert.equal(result.status, 409);
  assert.equal(result.body.error.code, 'task_failed');
  // It stays failed: a good task submitted after it is done while the failed one is never claimed again.
  const good = await submit(master.url, png);
  assert.equal((await waitForTask(master.url, good.body.id)).state, 'done');
  assert.equal((await getJson(`${master.url}/tasks/${failed.id}`)).body.attempts, 1);
});

test('POST /tasks/release: a worker shutting down gives back what its slots were granted unread; bad bodies change nothing', async (t) => {
  const { master } = await startMasterWithStorage(t, { LEASE_MS: '60000' });
  const { png } = rgbaImage(10, 10);
  const { body: task } = await submit(master.url, png);
  // Granted to slot w/1, whose answer (and token) the worker never read.
  const granted = await post(`${master.url}/tasks/claim`, { workerId: 'w/1', waitMs: 0 });
  assert.equal(granted.body.id, task.id);

  for (const body of [{}, { workerIds: [] }, { workerIds: 'w/1' }, { workerIds: [''] }, { workerIds: [42] }]) {
    const bad = await post(`${master.url}/tasks/release`, body);
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.equal(bad.body.error.code, 'invalid_body');
    assert.match(bad.body.error.message, /workerIds/);
  }
  assert.equal((await getJson(`${master.url}/tasks/release`, { method: 'PUT' })).status, 405);
  assert.equal((await getJson(`${master.url}/tasks/${task.id}`)).body.state, 'running', 'nothing changed');

  const released = await post(`${master.url}/tasks/release`, { workerIds: ['w/0', 'w/1'] });
  assert.equal(released.status, 200);
  assert.deepEqual(released.body, { released: [task.id] });
  const back = (await getJson(`${master.url}/tasks/${task.id}`)).body;
  assert.equal(back.state, 'pending');
  assert.equal(back.attempts, 0, 'not counted as an attempt');
  assert.deepEqual((await post(`${master.url}/tasks/release`, { workerIds: ['w/1'] })).body, { released: [] });
  const again = await post(`${master.url}/tasks/claim`, { workerId: 'other/0', waitMs: 0 });
  assert.equal(again.body.id, task.id);
  assert.equal(again.body.attempt, 1);
});

test('leases: a lapsed lease returns the task, MAX_ATTEMPTS lapses fail it, completion is idempotent and late ones are refused', async (t) => {
  const { master } = await startMasterWithStorage(t, { LEASE_MS: '600', MAX_ATTEMPTS: '2' });
  const { png } = rgbaImage(10, 10);
  const { body: task } = await submit(master.url, png);

  // The worker protocol, spoken by hand: claim, let the lease lapse, claim again.
  const first = await post(`${master.url}/tasks/claim`, { workerId: 'hand-1', waitMs: 0 });
  assert.equal(first.status, 200);
  assert.equal(first.body.id, task.id);
  assert.equal((await post(`${master.url}/tasks/claim`, { workerId: 'hand-2', waitMs: 0 })).status, 204);
  // A long-poll is answered when the lease lapses and the task returns.
  const started = Date.now();
  const second = await post(`${master.url}/tasks/claim`, { workerId: 'hand-2', waitMs: 10_000 });
  assert.equal(second.status, 200);
  assert.equal(second.body.id, task.id);
  assert.equal(second.body.attempt, 2);
  assert.ok(Date.now() - started < 9000, 'woken by the lapse, not by its own timeout');
  // The first lease is dead: renewing or completing with it is refused, and changes nothing.
  const late = await post(`${master.url}/tasks/${task.id}/complete`, { leaseToken: first.body.leaseToken });
  assert.equal(late.status, 409);
  assert.equal(late.body.error.code, 'lease_expired');
  assert.equal((await post(`${master.url}/tasks/${task.id}/renew`, { leaseToken: first.body.leaseToken })).status, 409);
  assert.equal((await getJson(`${master.url}/tasks/${task.id}`)).body.state, 'running');
  // The second lease lapses too: out of attempts, failed with the reason.
  const failed = await waitForTask(master.url, task.id, ['failed'], 10_000);
  assert.match(failed.error, /gave up after 2 attempts/);
  assert.equal((await post(`${master.url}/tasks/claim`, { workerId: 'hand-3', waitMs: 0 })).status, 204);

  // Completion: the first wins, repeating it is harmless, another lease is refused.
  const { body: other } = await submit(master.url, png);
  const claim = await post(`${master.url}/tasks/claim`, { workerId: 'hand-4', waitMs: 0 });
  assert.equal(claim.body.id, other.id);
  const renewed = await post(`${master.url}/tasks/${other.id}/renew`, { leaseToken: claim.body.leaseToken });
  assert.equal(renewed.status, 200);
  const done = await post(`${master.url}/tasks/${other.id}/complete`, { leaseToken: claim.body.leaseToken });
  assert.equal(done.status, 200);
  assert.equal(done.body.state, 'done');
  const again = await post(`${master.url}/tasks/${other.id}/complete`, { leaseToken: claim.body.leaseToken });
  assert.equal(again.status, 200);
  const stranger = await post(`${master.url}/tasks/${other.id}/complete`, { leaseToken: 'someone-else' });
  assert.equal(stranger.status, 409);
  assert.equal(stranger.body.error.code, 'already_done');
  // Bad bodies name the field.
  const bad = await post(`${master.url}/tasks/claim`, { waitMs: 10 });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /workerId/);
  assert.equal((await post(`${master.url}/tasks/abc/complete`, { leaseToken: 'x' })).status, 400);
  assert.equal((await post(`${master.url}/tasks/99999/fail`, { leaseToken: 'x', error: 'e' })).status, 404);
  const metrics = await (await fetch(`${master.url}/metrics`)).text();
  assert.match(metrics, /imagemaster_tasks\{state="failed"[^}]*\} 1/);
  assert.match(metrics, /imagemaster_claim_wait_seconds_count/);
  assert.match(metrics, /imagemaster_lease_lapses_total[^ ]* 2/);
});
