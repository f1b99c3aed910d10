import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import { RegistrationStore } from './store.ts';
import type { InstanceRecord } from './registry.ts';

const silent = winston.createLogger({ silent: true });
const record = (n: number): InstanceRecord => ({
  instanceId: `id-${n}`,
  serviceName: 'echo',
  serviceURL: `http://127.0.0.1:${1000 + n}`,
  heartbeatURL: `http://127.0.0.1:${1000 + n}/heartbeat`,
  requiredServices: [],
  metadata: {},
  state: 'up',
  registeredAt: 1,
  consecutiveFailures: 0,
  lastError: 'not saved',
});

test('registrations survive a save and a load: a snapshot and a journal after it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const [one, two, three] = [record(1), record(2), record(3)];
  const store = new RegistrationStore(dir, silent, 10);
  assert.deepEqual(store.load(), []);
  store.changed(one);
  store.changed(two);
  await store.sync();
  store.changed(one, true);
  store.changed(two, true);
  store.changed(three);
  await store.sync();
  store.close();
  const loaded = new RegistrationStore(dir, silent).load();
  assert.deepEqual(loaded.map((r) => r.instanceId), ['id-3']);
  assert.equal(loaded[0].lastError, undefined);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['registrations.3.journal', 'registrations.json'], 'each load folds the journal into a new snapshot');
});

test('a torn last journal line (a crash mid-write, never acknowledged) is skipped; the lines before it count', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const store = new RegistrationStore(dir, silent, 10);
  store.load();
  store.changed(record(1));
  store.changed(record(2));
  await store.sync();
  store.close();
  const journal = fs.readdirSync(dir).find((name) => name.endsWith('.journal'))!;
  fs.appendFileSync(path.join(dir, journal), '{"put":{"instanceId":"id-9","serviceName":"ec');
  const loaded = new RegistrationStore(dir, silent).load();
  assert.deepEqual(loaded.map((r) => r.instanceId).sort(), ['id-1', 'id-2']);
});

test('replay keeps one record per URL: a URL registered again under a new id replaces the old one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const store = new RegistrationStore(dir, silent, 10);
  store.load();
  const one = record(1);
  store.changed(one);
  await store.sync();
  one.instanceId = 'id-1b';
  store.changed(one);
  await store.sync();
  store.close();
  const loaded = new RegistrationStore(dir, silent).load();
  assert.deepEqual(loaded.map((r) => `${r.instanceId} ${r.serviceURL}`), ['id-1b http://127.0.0.1:1001']);
});

test('a journal older than the snapshot (a crash between a compaction\'s steps) is not replayed over it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const store = new RegistrationStore(dir, silent, 10);
  store.load();
  store.changed(record(1));
  await store.sync();
  store.close();
  const snapshot = JSON.parse(fs.readFileSync(path.join(dir, 'registrations.json'), 'utf8'));
  // A stale journal from before the snapshot: it would bring back id-7 if it were replayed.
  fs.writeFileSync(path.join(dir, `registrations.${snapshot.journal - 1}.journal`), `{"put":${JSON.stringify(record(7))}}\n`);
  const loaded = new RegistrationStore(dir, silent).load();
  assert.deepEqual(loaded.map((r) => r.instanceId), ['id-1']);
  assert.ok(!fs.readdirSync(dir).includes(`registrations.${snapshot.journal - 1}.journal`), 'the stale journal is removed');
});

test('the version 1 snapshot (before the journal) still loads', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  fs.writeFileSync(path.join(dir, 'registrations.json'), JSON.stringify({ version: 1, instances: [record(4)] }));
  assert.deepEqual(new RegistrationStore(dir, silent).load().map((r) => r.instanceId), ['id-4']);
});

test('a change is saved as it was when it was announced; check results are not saved', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const one = record(1);
  const store = new RegistrationStore(dir, silent, 10);
  store.changed(one);
  Object.assign(one, { state: 'down', downSince: 5, lastCheckAt: 6, lastLatencyMs: 7, consecutiveFailures: 3 });
  store.changed(one);
  one.lastCheckAt = 8; // a check, not a change: not announced
  await store.flush();
  const [loaded] = new RegistrationStore(dir, silent).load();
  assert.equal(loaded.state, 'down');
  assert.equal(loaded.downSince, 5);
  assert.equal(loaded.lastCheckAt, undefined);
  assert.equal(loaded.lastLatencyMs, undefined);
  assert.equal(loaded.consecutiveFailures, 0);
});

test('a missing or unreadable file loads as empty', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  assert.deepEqual(new RegistrationStore(dir, silent).load(), []);
  fs.writeFileSync(path.join(dir, 'registrations.json'), '{"instances": [');
  assert.deepEqual(new RegistrationStore(dir, silent).load(), []);
});

test('group commit: a thousand changes, each waited for, take a few writes, not a thousand', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const store = new RegistrationStore(dir, silent, 50);
  store.load();
  const journal = path.join(dir, fs.readdirSync(dir).find((name) => name.endsWith('.journal'))!);
  let writes = 0;
  const watcher = fs.watch(journal, () => writes++);
  t.after(() => watcher.close());
  const acknowledged: Promise<void>[] = [];
  for (let i = 0; i < 1000; i++) {
    store.changed(record(i));
    acknowledged.push(store.sync());
  }
  await Promise.all(acknowledged);
  assert.equal(fs.readFileSync(journal, 'utf8').trim().split('\n').length, 1000, 'every change is in the journal once its sync resolved');
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(writes <= 4, `${writes} writes for 1,000 acknowledged changes`);
  store.close();
  assert.equal(new RegistrationStore(dir, silent).load().length, 1000);
});

test('a sync with nothing to write resolves, and so does every one after it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const store = new RegistrationStore(dir, silent, 10);
  store.load();
  await store.sync();
  await store.sync();
  store.changed(record(1));
  await store.sync();
  await Promise.all([store.sync(), store.sync()]);
  store.changed(record(2));
  await store.sync();
  store.close();
  assert.equal(new RegistrationStore(dir, silent).load().length, 2);
});
