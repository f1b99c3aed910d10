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

test('registrations survive a save and a load, written atomically', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const [one, two, three] = [record(1), record(2), record(3)];
  const store = new RegistrationStore(dir, silent, 10);
  store.changed(one);
  store.changed(two);
  await store.flush();
  store.changed(one, true);
  store.changed(two, true);
  store.changed(three);
  await store.flush();
  const loaded = new RegistrationStore(dir, silent).load();
  assert.deepEqual(loaded.map((r) => r.instanceId), ['id-3']);
  assert.equal(loaded[0].lastError, undefined);
  assert.deepEqual(fs.readdirSync(dir), ['registrations.json']);
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

test('bursts of changes coalesce into few writes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  const file = path.join(dir, 'registrations.json');
  const store = new RegistrationStore(dir, silent, 50);
  const writes: string[] = [];
  const watcher = fs.watch(dir, (_event, name) => {
    if (name === 'registrations.json') writes.push(name);
  });
  t.after(() => watcher.close());
  for (let i = 0; i < 1000; i++) store.changed(record(i));
  await new Promise((resolve) => setTimeout(resolve, 300));
  await store.flush();
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).instances.length, 1000);
  assert.ok(writes.length <= 2, `${writes.length} writes for 1,000 changes`);
});
