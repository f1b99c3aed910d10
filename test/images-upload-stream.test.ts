/**
 * The master streams an upload into storage as it arrives. A storage node that has died (still listed: the
 * registry has not noticed yet) refuses the stream; the master holds the whole upload, so it stores it on a
 * node that is up and the client never hears of it. (A stream is never sent twice: the service client's
 * failover would send it again read, so empty or cut short.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { getJson, startMasterProc, startRegistry, startStorageProc, stopAll, submit, waitForProviders } from './fixtures/pipeline.ts';
import { freePort } from './helpers.ts';
import { rgbaImage } from './fixtures/pngs.ts';

test('a streamed upload that a dead storage node refuses is stored on the one that is up; the client gets its 201', { timeout: 120_000 }, async (t) => {
  // Heartbeats a minute apart: the dead node stays listed for the whole test, so the master does send to it.
  const registry = await startRegistry({ HEARTBEAT_INTERVAL_MS: '60000', HEARTBEAT_TIMEOUT_MS: '5000' });
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  t.after(() => stopAll(master, storage, registry));
  // A node that registered and died: nothing listens on its port.
  const dead = `http://127.0.0.1:${await freePort()}`;
  const registered = await getJson(`${registry.url}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ serviceName: 'imagestorage', serviceURL: dead, heartbeatURL: `${dead}/health` }) });
  assert.ok(registered.status < 300, JSON.stringify(registered.body));
  await waitForProviders(master, 'imagestorage', 2);

  const ids: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await submit(master.url, rgbaImage(64 + i, 48, i + 1).png);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  assert.equal(new Set(ids).size, 4);
  assert.match(master.output(), /the upload's stream into storage failed \(.*ECONNREFUSED.*\); storing it again/, 'a stream went to the dead node');
  // Every upload is whole on the node that is up.
  const stored = fs.readdirSync(path.join(storage.dataDir, 'working')).map((file) => fs.readFileSync(path.join(storage.dataDir, 'working', file)));
  assert.deepEqual(stored.map((png) => png.length).sort(), ids.map((_, i) => rgbaImage(64 + i, 48, i + 1).png.length).sort());
  assert.doesNotMatch(master.output(), /\berror\b/i);
});
