/**
 * Images on S3 (BLOB_STORE=s3, #14) against a real OpenStack Swift with s3api (harness/swift.ts): the storage
 * service's blob store, two storage nodes on one bucket with one SIGKILLed, Swift going away and coming back,
 * and the launcher's --storage-nodes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { s3Client, skipUnlessEngine, startSwift, type Swift } from '../harness/swift.ts';
import { launch } from '../harness/processes.ts';
import { startMasterProc, startRegistry, startStorageProc, startWorkerProc, stopAll, submit, tempDir, waitFor, waitForProviders, waitForTask, getJson } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';
import { ROOT, freePort } from './helpers.ts';

const skip = skipUnlessEngine('swift');
let swift: Swift;
let s3: S3Client;

before(async () => {
  if (skip) return;
  swift = await startSwift();
  s3 = s3Client(swift);
});
after(async () => {
  s3?.destroy();
  await swift?.stop();
});

/** The keys in a bucket, sorted. */
async function keys(bucket: string): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

/** Every file below a folder (the storage node's DATA_DIR must have none). */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => path.join(e.parentPath, e.name));
}

/** A PUT whose body is written in 64 KiB chunks without a Content-Length (a stream of unknown size). */
function putChunked(url: string, body: Buffer): Promise<{ status: number; body: string } | Error> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'PUT', headers: { 'content-type': 'image/png' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', resolve);
    req.setTimeout(60_000, () => req.destroy(new Error('timeout')));
    let offset = 0;
    const more = () => {
      while (offset < body.length) {
        const chunk = body.subarray(offset, offset + 64 * 1024);
        offset += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', more);
      }
      req.end();
    };
    more();
  });
}

test('the blob store on S3: put, get, head, delete; bad ids refused; a large image streams in multipart; 413 leaves nothing; nothing on the local disk', { skip, timeout: 180_000 }, async (t) => {
  const bucket = 'images-store';
  const registry = await startRegistry();
  const dataDir = tempDir('imagestorage-s3-');
  const storage = await startStorageProc(registry.url, { ...swift.blobStoreEnv(bucket), MAX_IMAGE_BYTES: String(12 * 2 ** 20) }, dataDir);
  t.after(() => stopAll(storage, registry));
  const { png } = rgbaImage(20, 10);

  const put = await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'PUT', body: new Uint8Array(png), headers: { 'content-type': 'image/png' } });
  assert.equal(put.status, 201);
  assert.deepEqual(await put.json(), { state: 'working', id: 'abc_D-1', bytes: png.length });
  // The 201 means the object is in the bucket, under its state and id.
  const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'working/abc_D-1.png' }));
  assert.deepEqual(Buffer.from(await stored.Body!.transformToByteArray()), png);
  const got = await fetch(`${storage.url}/images/working/abc_D-1`);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), png);
  const head = await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('content-length')), png.length);
  const missing = await fetch(`${storage.url}/images/finished/abc_D-1`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'image_not_found');
  assert.equal((await fetch(`${storage.url}/images/finished/abc_D-1`, { method: 'HEAD' })).status, 404);

  // Bad ids are refused before any key is made.
  for (const bad of ['..%2F..%2Fescaped', 'a.png', 'x'.repeat(65), '%00abc']) {
    const res = await fetch(`${storage.url}/images/working/${bad}`, { method: 'PUT', body: new Uint8Array(png) });
    assert.equal(res.status, 400, bad);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_image_address');
  }
  assert.equal((await fetch(`${storage.url}/images/elsewhere/abc`, { method: 'PUT', body: new Uint8Array(png) })).status, 400);
  assert.deepEqual(await keys(bucket), ['working/abc_D-1.png']);

  // A large image of unknown size streams through in parts: a multipart upload (its ETag counts the parts).
  const large = randomBytes(11 * 2 ** 20);
  const streamed = await putChunked(`${storage.url}/images/finished/large`, large);
  assert.ok(!(streamed instanceof Error), String(streamed));
  assert.equal(streamed.status, 201, streamed.body);
  const largeHead = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'finished/large.png' }));
  assert.equal(largeHead.ContentLength, large.length);
  assert.match(largeHead.ETag ?? '', /-3"$/, 'three parts of 5 MiB at most');
  const largeBack = await fetch(`${storage.url}/images/finished/large`);
  assert.equal(Number(largeBack.headers.get('content-length')), large.length);
  assert.ok(Buffer.from(await largeBack.arrayBuffer()).equals(large));

  // Past the limit: 413 on Content-Length at once, and mid-stream after two parts went up: the upload is aborted.
  const tooLarge = randomBytes(15 * 2 ** 20);
  const declared = await fetch(`${storage.url}/images/working/too-large`, { method: 'PUT', body: new Uint8Array(tooLarge) });
  assert.equal(declared.status, 413);
  assert.equal(((await declared.json()) as { error: { code: string } }).error.code, 'payload_too_large');
  const chunked = await putChunked(`${storage.url}/images/working/too-large-chunked`, tooLarge);
  if (!(chunked instanceof Error)) assert.equal(chunked.status, 413, chunked.body);
  assert.deepEqual((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [], [], 'no multipart upload left open');
  assert.deepEqual(await keys(bucket), ['finished/large.png', 'working/abc_D-1.png']);

  // The retention's listing, then delete (a second delete is a 404, as on disk).
  const listed = await getJson(`${storage.url}/images/working?before=${Date.now() + 5000}`);
  assert.deepEqual(listed.body.images.map((i: { id: string; bytes: number }) => [i.id, i.bytes]), [['abc_D-1', png.length]]);
  assert.equal((await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'DELETE' })).status, 404);
  assert.deepEqual(await keys(bucket), ['finished/large.png']);
  assert.deepEqual(filesUnder(dataDir), [], 'a storage node on S3 writes nothing under DATA_DIR');
});

test('a storage node whose S3 settings are wrong does not start, and says why on one line', { skip, timeout: 120_000 }, async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ ...swift.blobStoreEnv('images-bad'), S3_SECRET_ACCESS_KEY: 'wrong' }, /refused HeadBucket on bucket images-bad: HTTP 403; check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY$/m],
    [{ ...swift.blobStoreEnv('images-bad'), S3_REGION: 'eu-west-1' }, /refused HeadBucket on bucket images-bad: HTTP 400; is S3_REGION/m],
    [{ BLOB_STORE: 's3', S3_ENDPOINT: swift.endpoint }, /could not start: BLOB_STORE=s3 needs S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY$/m],
  ];
  for (const [env, expected] of cases) {
    const failed = await startStorageProc('http://127.0.0.1:1', env).then(
      (proc) => proc.stop().then(() => new Error('it started')),
      (err: Error) => err,
    );
    assert.match(failed.message, /exited \(1\) before it was ready/);
    assert.match(failed.message, expected);
  }
  assert.deepEqual(await keys('images-bad').catch((err: Error) => err.name), 'NoSuchBucket', 'no bucket made with bad settings');
});

test('two storage nodes on one bucket: SIGKILL one, and every image is still served by the other, through the master', { skip, timeout: 240_000 }, async (t) => {
  const bucket = 'images-shared';
  const registry = await startRegistry();
  const dirs = [tempDir('imagestorage-a-'), tempDir('imagestorage-b-')];
  // Started at once: both find the bucket missing and make it.
  const [a, b] = await Promise.all(dirs.map((dir) => startStorageProc(registry.url, swift.blobStoreEnv(bucket), dir)));
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  t.after(() => stopAll(worker, master, a, b, registry));
  await waitForProviders(master, 'imagestorage', 2);
  await waitForProviders(worker, 'imagestorage', 2);

  const ids: number[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await submit(master.url, rgbaImage(16 + i, 12, i + 1).png);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  const results = new Map<number, Buffer>();
  for (const id of ids) {
    await waitForTask(master.url, id, ['done']);
    const res = await fetch(`${master.url}/tasks/${id}/result`);
    assert.equal(res.status, 200);
    results.set(id, Buffer.from(await res.arrayBuffer()));
  }
  const stored = await keys(bucket);
  assert.equal(stored.filter((k) => k.startsWith('working/')).length, 8);
  assert.equal(stored.filter((k) => k.startsWith('finished/')).length, 8);

  a.child.kill('SIGKILL');
  await a.exited;
  // At once, before the registry has noticed: the master's client fails over from the refused node.
  for (const id of ids) {
    const res = await fetch(`${master.url}/tasks/${id}/result`);
    assert.equal(res.status, 200, `task ${id}`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(results.get(id)!), `task ${id}'s result`);
  }
  for (const key of stored) {
    const [state, file] = key.split('/');
    const res = await fetch(`${b.url}/images/${state}/${file.replace(/\.png$/, '')}`);
    assert.equal(res.status, 200, key);
    await res.arrayBuffer();
  }
  // And the pipeline goes on with one node.
  const late = await submit(master.url, rgbaImage(9, 9, 42).png);
  assert.equal(late.status, 201, JSON.stringify(late.body));
  await waitForTask(master.url, late.body.id, ['done']);
  assert.equal((await fetch(`${master.url}/tasks/${late.body.id}/result`)).status, 200);
  for (const dir of dirs) assert.deepEqual(filesUnder(dir), [], `nothing written under ${dir}`);
});

test('Swift stopped mid-way: the storage node answers 503 with Retry-After, and recovers by itself when it is back', { skip, timeout: 180_000 }, async (t) => {
  const bucket = 'images-outage';
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url, { ...swift.blobStoreEnv(bucket), S3_TIMEOUT_MS: '3000' }, tempDir('imagestorage-outage-'));
  const master = await startMasterProc(registry.url);
  t.after(() => stopAll(master, storage, registry));
  await waitForProviders(master, 'imagestorage');
  const { png } = rgbaImage(12, 12);
  assert.equal((await fetch(`${storage.url}/images/working/before`, { method: 'PUT', body: new Uint8Array(png) })).status, 201);

  await swift.proxy.kill('SIGKILL');
  const requests: [string, RequestInit][] = [
    ['/images/working/during', { method: 'PUT', body: new Uint8Array(png) }],
    ['/images/working/before', { method: 'GET' }],
    ['/images/working/before', { method: 'DELETE' }],
    [`/images/working?before=${Date.now()}`, { method: 'GET' }],
  ];
  for (const [route, init] of requests) {
    const res = await fetch(`${storage.url}${route}`, { ...init, signal: AbortSignal.timeout(20_000) });
    assert.equal(res.status, 503, `${init.method} ${route}`);
    assert.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After');
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'blob_store_unavailable');
    assert.match(body.error.message, /S3 at http:\/\/127\.0\.0\.1:\d+ is unavailable/);
  }
  const head = await fetch(`${storage.url}/images/working/before`, { method: 'HEAD' });
  assert.equal(head.status, 503);
  // An upload through the master meanwhile: a 503 to retry as well, not a 502.
  const upload = await fetch(`${master.url}/tasks`, { method: 'POST', body: new Uint8Array(png), headers: { 'content-type': 'image/png' } });
  assert.equal(upload.status, 503);
  assert.ok(Number(upload.headers.get('retry-after')) > 0, "the master's Retry-After");
  assert.equal(((await upload.json()) as { error: { code: string } }).error.code, 'upstream_unavailable');
  assert.equal((await getJson(`${storage.url}/health`)).status, 200, 'the node itself stays up');

  await swift.proxy.restart();
  await waitFor(async () => (await fetch(`${storage.url}/images/working/during`, { method: 'PUT', body: new Uint8Array(png) })).status === 201, 'a PUT to succeed again', 30_000, 200);
  const back = await fetch(`${storage.url}/images/working/before`);
  assert.equal(back.status, 200);
  assert.deepEqual(Buffer.from(await back.arrayBuffer()), png);
  assert.deepEqual(await keys(bucket), ['working/before.png', 'working/during.png']);

  // A stalled Swift (stopped, its port still accepting) is bounded by S3_TIMEOUT_MS: a 503, not a hang.
  process.kill(swift.proxy.pid()!, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(swift.proxy.pid()!, 'SIGCONT'); // never leave the shared Swift stopped for the next test
    } catch {
      // gone
    }
  });
  const started = Date.now();
  const stalled = await fetch(`${storage.url}/images/working/before`, { signal: AbortSignal.timeout(20_000) });
  const waited = Date.now() - started;
  assert.equal(stalled.status, 503);
  assert.equal(((await stalled.json()) as { error: { code: string } }).error.code, 'blob_store_unavailable');
  assert.ok(waited >= 2500 && waited < 9000, `answered after ${waited} ms with S3_TIMEOUT_MS=3000`);
  process.kill(swift.proxy.pid()!, 'SIGCONT');
  await waitFor(async () => (await fetch(`${storage.url}/images/working/before`)).status === 200, 'a GET to succeed after the stall', 30_000, 200);
});

test('the launcher: --storage-nodes 2 without BLOB_STORE=s3 is refused on one line; with it, two nodes run and register', { skip, timeout: 240_000 }, async (t) => {
  const platform = path.join(ROOT, 'cmd/platform.ts');
  const { BLOB_STORE: _unset, ...inherited } = process.env;
  const refused = launch(process.execPath, ['--import', 'tsx', platform, '--storage-nodes', '2', '--data-dir', tempDir('launcher-refused-')], { cwd: ROOT, env: inherited });
  t.after(() => refused.kill());
  const code = await refused.exited;
  assert.equal(code, 2, refused.output());
  assert.equal(refused.output().trim(), 'platform: --storage-nodes 2 needs BLOB_STORE=s3 (with S3_ENDPOINT, S3_BUCKET and the S3 keys): storage nodes on local disks would each hold different images');
  const masters = launch(process.execPath, ['--import', 'tsx', platform, '--masters', '2', '--data-dir', tempDir('launcher-refused-')], { cwd: ROOT, env: { ...inherited, TASK_STORE: 'sqlite' } });
  t.after(() => masters.kill());
  assert.equal(await masters.exited, 2, masters.output());
  assert.match(masters.output(), /^platform: --masters 2 needs TASK_STORE=postgres/);

  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const dataDir = tempDir('launcher-s3-');
  const bucket = 'images-launcher';
  const launcher = launch(
    process.execPath,
    ['--import', 'tsx', platform, '--services', 'registry,logservice,storage', '--storage-nodes', '2', '--ephemeral', '--port', `registry=${registryPort}`, '--data-dir', dataDir],
    { cwd: ROOT, env: { ...inherited, ...swift.blobStoreEnv(bucket), HEARTBEAT_INTERVAL_MS: '200', HEARTBEAT_TIMEOUT_MS: '500' } },
  );
  t.after(() => launcher.kill());
  await launcher.waitUntilRunning(150_000);
  assert.match(launcher.output(), /^storage\s+imagestorage\s+\d+ \d+\s+2\s+http:\/\/\S+ http:\/\/\S+/m);
  const { body } = await getJson(`${registryUrl}/services?name=imagestorage`);
  const nodes = (body.instances as { state: string; serviceURL: string }[]).filter((i) => i.state === 'up').map((i) => i.serviceURL);
  assert.equal(nodes.length, 2);
  assert.notEqual(nodes[0], nodes[1]);
  // One bucket: what one node stored, the other serves.
  const { png } = rgbaImage(8, 8);
  assert.equal((await fetch(`${nodes[0]}/images/working/shared`, { method: 'PUT', body: new Uint8Array(png) })).status, 201);
  const other = await fetch(`${nodes[1]}/images/working/shared`);
  assert.equal(other.status, 200);
  assert.deepEqual(Buffer.from(await other.arrayBuffer()), png);
  for (const folder of ['storage-1', 'storage-2']) assert.deepEqual(filesUnder(path.join(dataDir, folder)), [], folder);
  launcher.child.kill('SIGTERM');
  assert.equal(await launcher.exited, 0, launcher.output().slice(-3000));
});
