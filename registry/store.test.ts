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
  let records = [record(1), record(2)];
  const store = new RegistrationStore(dir, () => records, silent, 10);
  store.markDirty();
  await store.flush();
  records = [record(3)];
  store.markDirty();
  await store.flush();
  const loaded = new RegistrationStore(dir, () => [], silent).load();
  assert.deepEqual(loaded.map((r) => r.instanceId), ['id-3']);
  assert.equal(loaded[0].lastError, undefined);
  assert.deepEqual(fs.readdirSync(dir), ['registrations.json']);
});

test('a missing or unreadable file loads as empty', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  assert.deepEqual(new RegistrationStore(dir, () => [], silent).load(), []);
  fs.writeFileSync(path.join(dir, 'registrations.json'), '{"instances": [');
  assert.deepEqual(new RegistrationStore(dir, () => [], silent).load(), []);
});

test('bursts of changes coalesce into few writes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
  let snapshots = 0;
  const store = new RegistrationStore(dir, () => (snapshots++, [record(1)]), silent, 50);
  for (let i = 0; i < 1000; i++) store.markDirty();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await store.flush();
  assert.equal(snapshots, 1);
});
