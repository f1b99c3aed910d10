/** The patch rules, stated against a recording notifier (Consul's mock-notifier pattern): who is told what. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from './registry.ts';
import { Announcer, type PatchQueues } from './announcer.ts';
import type { DownReason, PatchEntry } from './protocol.ts';

const refused: DownReason = { code: 'connection_refused', message: 'refused' };

interface Told {
  to: string;
  added: string[];
  removed: string[];
  always: boolean;
}

function recording() {
  const told: Told[] = [];
  const calls: string[] = [];
  const names = (entries: PatchEntry[]) => entries.map((e) => `${e.name} ${e.url}`);
  const queues: PatchQueues = {
    enqueue: (id, _url, added, removed, always = false) => void told.push({ to: id, added: names(added), removed: names(removed), always }),
    delivered: async () => 7,
    lastSeq: () => 3,
    pause: (id) => void calls.push(`pause ${id}`),
    resume: (id) => void calls.push(`resume ${id}`),
    rename: (from, to) => void calls.push(`rename ${from} ${to}`),
    forget: (id) => void calls.push(`forget ${id}`),
  };
  return { told, calls, queues };
}

const service = (name: string, port: number, requiredServices: string[] = [], extra: Record<string, unknown> = {}) => ({
  serviceName: name,
  serviceURL: `http://127.0.0.1:${port}`,
  heartbeatURL: `http://127.0.0.1:${port}/heartbeat`,
  serviceUpdateURL: `http://127.0.0.1:${port}/services`,
  requiredServices,
  ...extra,
});

function setUp() {
  const registry = new Registry();
  const rec = recording();
  const announcer = new Announcer(registry, rec.queues, { notifyTimeoutMs: 50 });
  return { registry, announcer, ...rec };
}

test('a new instance learns every provider it needs in its first patch, and gets one even when there are none', () => {
  const { registry, told } = setUp();
  registry.register(service('echo', 1));
  registry.register(service('echo', 2));
  told.length = 0;
  const consumer = registry.register(service('consumer', 3, ['echo'])).record;
  assert.deepEqual(told, [{ to: consumer.instanceId, added: ['echo http://127.0.0.1:1', 'echo http://127.0.0.1:2'], removed: [], always: true }]);
  told.length = 0;
  const lonely = registry.register(service('lonely', 4, ['nosuch'])).record;
  assert.deepEqual(told, [{ to: lonely.instanceId, added: [], removed: [], always: true }]);
});

test('a dependent learns of an add, a removal and a rename; an instance that does not require the name hears nothing', () => {
  const { registry, told } = setUp();
  const consumer = registry.register(service('consumer', 3, ['echo'])).record;
  const bystander = registry.register(service('bystander', 5, ['other'])).record;
  told.length = 0;
  const echo = registry.register(service('echo', 1)).record;
  assert.deepEqual(told.filter((t) => t.to === consumer.instanceId), [{ to: consumer.instanceId, added: ['echo http://127.0.0.1:1'], removed: [], always: false }]);
  told.length = 0;
  registry.register(service('echo', 1, [], { serviceName: 'echo2' }));
  assert.deepEqual(told.filter((t) => t.to === consumer.instanceId), [{ to: consumer.instanceId, added: [], removed: ['echo http://127.0.0.1:1'], always: false }], 'renamed away: the old entry is removed');
  registry.register(service('echo', 1));
  told.length = 0;
  registry.markDown(echo, refused);
  registry.remove(echo.instanceId);
  assert.deepEqual(
    told.filter((t) => t.to === consumer.instanceId),
    [
      { to: consumer.instanceId, added: [], removed: ['echo http://127.0.0.1:1'], always: false },
      { to: consumer.instanceId, added: [], removed: ['echo http://127.0.0.1:1'], always: false },
    ],
  );
  assert.equal(told.filter((t) => t.to === bystander.instanceId).length, 0);
});

test('a subscriber that goes down is paused, and on its return resumed after what it needs is queued; a restarted one keeps its queue', () => {
  const { registry, told, calls } = setUp();
  const consumer = registry.register(service('consumer', 3, ['echo'])).record;
  registry.register(service('echo', 1));
  calls.length = 0;
  told.length = 0;
  registry.markDown(consumer, refused);
  registry.markUp(consumer);
  assert.deepEqual(calls, [`pause ${consumer.instanceId}`, `resume ${consumer.instanceId}`]);
  assert.deepEqual(told, [{ to: consumer.instanceId, added: ['echo http://127.0.0.1:1'], removed: [], always: false }]);
  calls.length = 0;
  told.length = 0;
  const oldId = consumer.instanceId;
  const restarted = registry.register(service('consumer', 3, ['echo'], { instanceId: 'new-id' })).record;
  assert.equal(restarted.instanceId, 'new-id');
  assert.deepEqual(calls, [`rename ${oldId} new-id`, 'resume new-id'], 'the queue moves to the new id before anything is queued under it');
  assert.deepEqual(told.map((t) => t.to), ['new-id']);
  registry.remove('new-id');
  assert.equal(calls.at(-1), 'forget new-id');
});

test('a registration is answered with the seq of its first patch once delivered; without an update URL, with the last seq', async () => {
  const { registry, announcer } = setUp();
  const withUpdates = registry.register(service('consumer', 3, [])).record;
  assert.equal(await announcer.answerSeq(withUpdates), 7);
  const leased = registry.register({ serviceName: 'worker', serviceURL: 'http://127.0.0.1:6', requiredServices: [], heartbeatURL: undefined, serviceUpdateURL: undefined, ttlSeconds: 5 }).record;
  assert.equal(await announcer.answerSeq(leased), 3);
});
