import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startRegistry, startStorageProc, stopAll, tempDir, getJson } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';

/** A raw request, so paths reach the server exactly as written (fetch would normalise "..").*/
function raw(url: string, method: string, rawPath: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: rawPath, headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

test('storage: put, get, head, delete; bad addresses are 400s and nothing lands outside DATA_DIR; 413 past the limit; restarts keep images', async (t) => {
  const registry = await startRegistry();
  const root = tempDir('storage-root-');
  const dataDir = path.join(root, 'data');
  let storage = await startStorageProc(registry.url, { MAX_IMAGE_BYTES: String(64 * 1024) }, dataDir);
  t.after(() => stopAll(storage, registry));
  const { png } = rgbaImage(20, 10);

  const put = await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'PUT', body: new Uint8Array(png), headers: { 'content-type': 'image/png' } });
  assert.equal(put.status, 201);
  const got = await fetch(`${storage.url}/images/working/abc_D-1`);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), png);
  const head = await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('content-length')), png.length);
  assert.equal((await fetch(`${storage.url}/images/finished/abc_D-1`)).status, 404);

  // Every bad address is a 400 naming the problem, and writes nothing anywhere.
  const bad = [
    '/images/working/..%2F..%2Fescaped',
    '/images/working/../../escaped',
    '/images/..%2F..%2Ftmp/escaped',
    '/images/working/%2E%2E',
    '/images/working/a.png',
    '/images/working/' + 'x'.repeat(65),
    '/images/elsewhere/abc',
    '/images/working/a/b',
    '/images/working/%00abc',
  ];
  for (const p of bad) {
    const res = await raw(storage.url, 'PUT', p, png);
    assert.ok(res.status === 400 || res.status === 404, `${p} answered ${res.status}`);
    if (res.status === 400) assert.match(JSON.parse(res.body).error.code, /invalid_image_address/);
    const read = await raw(storage.url, 'GET', p);
    assert.ok(read.status === 400 || read.status === 404, `GET ${p} answered ${read.status}`);
  }
  // The encoded traversal must be a 400 (not a 404 of some other route).
  const traversal = await raw(storage.url, 'PUT', '/images/working/..%2F..%2Fescaped', png);
  assert.equal(traversal.status, 400);
  assert.match(JSON.parse(traversal.body).error.message, /id/);
  assert.deepEqual(fs.readdirSync(root), ['data']);
  assert.deepEqual(filesUnder(dataDir).map((f) => path.relative(dataDir, f)), ['working/abc_D-1.png']);

  // Too large: refused on Content-Length at once, and when a chunked body runs past the limit.
  const big = Buffer.alloc(65 * 1024, 7);
  const declared = await raw(storage.url, 'PUT', '/images/working/big', big);
  assert.equal(declared.status, 413);
  assert.equal(JSON.parse(declared.body).error.code, 'payload_too_large');
  const chunked = await fetch(`${storage.url}/images/working/big2`, {
    method: 'PUT',
    body: new ReadableStream({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new Uint8Array(16 * 1024));
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit).catch((err: Error) => err);
  if (!(chunked instanceof Error)) assert.equal(chunked.status, 413);
  assert.equal((await getJson(`${storage.url}/images/working/big2`)).status, 404);
  assert.deepEqual(filesUnder(dataDir).map((f) => path.relative(dataDir, f)), ['working/abc_D-1.png']);

  // Overwrite is atomic and complete; delete; and a restart keeps what was stored.
  const { png: other } = rgbaImage(30, 5, 3);
  assert.equal((await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'PUT', body: new Uint8Array(other) })).status, 201);
  assert.equal((await fetch(`${storage.url}/images/finished/keep`, { method: 'PUT', body: new Uint8Array(png) })).status, 201);
  assert.equal((await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${storage.url}/images/working/abc_D-1`, { method: 'DELETE' })).status, 404);
  assert.equal(await storage.stop('SIGTERM'), 0);
  storage = await startStorageProc(registry.url, {}, dataDir);
  const kept = await fetch(`${storage.url}/images/finished/keep`);
  assert.deepEqual(Buffer.from(await kept.arrayBuffer()), png);
  const metrics = await (await fetch(`${storage.url}/metrics`)).text();
  assert.match(metrics, /imagestorage_operations_total/);
});
