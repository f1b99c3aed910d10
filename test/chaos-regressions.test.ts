/**
 * Regression tests for what the chaos run (npm run chaos, bench/chaos.ts) found in the services.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startRegistry, startStorageProc, stopAll, waitFor } from './fixtures/pipeline.ts';

const fds = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;

test('storage closes the file of a download the client abandoned (a worker killed mid-download)', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  t.after(() => stopAll(storage, registry));
  const image = Buffer.alloc(8 * 2 ** 20, 7);
  const put = await fetch(`${storage.url}/images/finished/big`, { method: 'PUT', body: image, headers: { 'content-type': 'image/png' } });
  assert.equal(put.status, 201);
  const pid = storage.child.pid!;
  // One complete download first, so the baseline includes whatever the server keeps open.
  assert.equal((await (await fetch(`${storage.url}/images/finished/big`)).arrayBuffer()).byteLength, image.length);
  const baseline = fds(pid);

  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${storage.url}/images/finished/big`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => (req.destroyed ? resolve() : reject(err)));
    });
  }
  // Without the fix, 20 read streams stay paused with their files open until a GC happens to run.
  await waitFor(() => fds(pid) <= baseline + 4, `storage's open files back to ${baseline} (now ${fds(pid)})`, 15_000, 100);
  // And it still serves whole images.
  assert.equal((await (await fetch(`${storage.url}/images/finished/big`)).arrayBuffer()).byteLength, image.length);
});

test('a service keeps its keep-alive connection after answering a GET (the master reads results from storage on one)', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  t.after(() => stopAll(storage, registry));
  await fetch(`${storage.url}/images/finished/small`, { method: 'PUT', body: Buffer.alloc(1000, 1), headers: { 'content-type': 'image/png' } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const sockets = new Set<unknown>();
  for (let i = 0; i < 5; i++) {
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${storage.url}/images/finished/small`, { agent }, (res) => {
          sockets.add(res.socket);
          res.resume();
          res.on('end', () => resolve());
        })
        .on('error', reject);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // A server that ends the connection after each bodyless request makes the next call race its FIN
  // (ECONNRESET, which the chaos run saw as a 502 from GET /tasks/:id/result).
  assert.equal(sockets.size, 1, `${sockets.size} connections for 5 sequential GETs`);
});
