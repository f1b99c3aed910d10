import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InstanceIdInUse, Registry, type InstanceRecord, type RegistryChange } from './registry.ts';
import { HISTORY_LIMIT } from './history.ts';
import { registrationSchema, type DownReason, type Registration } from './protocol.ts';

const refused: DownReason = { code: 'connection_refused', message: 'refused' };

function reg(name: string, url: string, requiredServices: string[] = [], extra: Partial<Registration> = {}): Registration {
  return registrationSchema.parse({ serviceName: name, serviceURL: url, heartbeatURL: `${url}/heartbeat`, serviceUpdateURL: `${url}/services`, requiredServices, ...extra });
}

function recording(registry: Registry): RegistryChange['type'][] {
  const types: RegistryChange['type'][] = [];
  registry.on('change', (change) => types.push(change.type));
  return types;
}

test('the same serviceURL updates one instance and never duplicates it', () => {
  const registry = new Registry();
  const types = recording(registry);
  const first = registry.register(reg('echo', 'http://127.0.0.1:1'));
  const second = registry.register(reg('echo', 'http://127.0.0.1:1', [], { metadata: { v: '2' } }));
  assert.equal(first.created, true);
  assert.equal(second.created, false);
  assert.equal(second.record.instanceId, first.record.instanceId);
  assert.equal(registry.size, 1);
  assert.deepEqual(second.record.metadata, { v: '2' });
  assert.deepEqual(types, ['registered', 'updated']);
});

test('providers are the up instances; down and up are announced once each', () => {
  const registry = new Registry();
  const a = registry.register(reg('echo', 'http://127.0.0.1:1')).record;
  registry.register(reg('echo', 'http://127.0.0.1:2'));
  const types = recording(registry);
  assert.deepEqual(registry.providers('echo').sort(), ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  registry.markDown(a, refused);
  registry.markDown(a, { code: 'timeout', message: 'refused again' });
  assert.deepEqual(registry.providers('echo'), ['http://127.0.0.1:2']);
  assert.equal(a.lastError, 'refused again');
  registry.markUp(a);
  registry.markUp(a);
  assert.deepEqual(types, ['down', 'up']);
  assert.equal(registry.providers('echo').length, 2);
  assert.deepEqual(registry.providerMap(['echo', 'none']), { echo: registry.providers('echo'), none: [] });
});

test('dependents follow requiredServices through re-registration and removal', () => {
  const registry = new Registry();
  const consumer = registry.register(reg('consumer', 'http://127.0.0.1:3', ['echo', 'log'])).record;
  assert.deepEqual(registry.dependentsOf('echo'), [consumer]);
  registry.register(reg('consumer', 'http://127.0.0.1:3', ['log']));
  assert.deepEqual(registry.dependentsOf('echo'), []);
  assert.deepEqual(registry.dependentsOf('log'), [consumer]);
  const types = recording(registry);
  assert.equal(registry.remove(consumer.instanceId)?.serviceURL, 'http://127.0.0.1:3');
  assert.equal(registry.remove(consumer.instanceId), undefined);
  assert.deepEqual(registry.dependentsOf('log'), []);
  assert.equal(registry.getByUrl('http://127.0.0.1:3'), undefined);
  assert.deepEqual(types, ['deregistered']);
});

test('list filters by name; restore puts a record back without announcing it', () => {
  const registry = new Registry();
  const a = registry.register(reg('alpha', 'http://127.0.0.1:1')).record;
  registry.register(reg('beta', 'http://127.0.0.1:2'));
  assert.equal(registry.list().length, 2);
  assert.deepEqual(registry.list(['alpha']).map((r) => r.serviceURL), ['http://127.0.0.1:1']);

  const restored = new Registry();
  const types = recording(restored);
  restored.restore({ ...a });
  restored.restore({ ...a }); // the same id or URL twice is ignored
  assert.equal(restored.size, 1);
  assert.deepEqual(restored.providers('alpha'), ['http://127.0.0.1:1']);
  assert.deepEqual(types, []);
});

test('a lease renewal extends the lease and brings a lapsed instance back up', () => {
  const registry = new Registry();
  const worker = registry.register(registrationSchema.parse({ serviceName: 'worker', serviceURL: 'http://127.0.0.1:4', ttlSeconds: 2 }), 1000).record;
  assert.equal(worker.leaseExpiresAt, 3000);
  registry.markDown(worker, { code: 'lease_expired', message: 'lease expired' }, 4000);
  registry.renewLease(worker, 5000);
  assert.equal(worker.state, 'up');
  assert.equal(worker.leaseExpiresAt, 7000);
});

test('a new instance of a service where one of it on the same host is down takes its place: one instance, its history, one restart', () => {
  const registry = new Registry();
  const old = registry.register(reg('worker', 'http://127.0.0.1:5001'), 1000).record;
  const other = registry.register(reg('worker', 'http://127.0.0.2:5001'), 1000).record;
  registry.markDown(old, refused, 2000);
  registry.markDown(other, refused, 2000);
  const changes: RegistryChange[] = [];
  registry.on('change', (change) => changes.push(change));
  const { record, created } = registry.register(reg('worker', 'http://127.0.0.1:5002'), 3000);
  assert.equal(created, true);
  assert.notEqual(record.instanceId, old.instanceId, 'a new process is a new instance');
  assert.deepEqual(registry.list(['worker']).map((r) => r.serviceURL).sort(), ['http://127.0.0.1:5002', 'http://127.0.0.2:5001'], 'the one on the other host stays');
  assert.deepEqual(changes.map((c) => [c.type, c.instance.serviceURL, c.replacedBy]), [
    ['evicted', 'http://127.0.0.1:5001', record.instanceId],
    ['registered', 'http://127.0.0.1:5002', undefined],
  ]);
  assert.equal(record.restarts, 1);
  assert.equal(record.predecessorId, old.instanceId);
  assert.deepEqual(record.history?.map((h) => [h.at, h.event, h.reason?.code]), [
    [1000, 'registered', undefined],
    [2000, 'down', 'connection_refused'],
    [3000, 'restarted', undefined],
  ]);
  // An up instance is never replaced: a second process is a second instance.
  registry.register(reg('worker', 'http://127.0.0.1:5003'), 4000);
  assert.equal(registry.list(['worker']).length, 3);
});

test('the same instanceId coming back at a new URL takes its place once it is down; while it is up the id is refused', () => {
  const registry = new Registry();
  const first = registry.register(reg('grades', 'http://127.0.0.1:6001', [], { instanceId: 'grades-1' }), 1000).record;
  // What once ran at the URL it comes back to: dead too, since the process there now is this one.
  const stale = registry.register(reg('grades', 'http://127.0.0.1:6002'), 1200).record;
  assert.throws(() => registry.register(reg('grades', 'http://127.0.0.1:6003', [], { instanceId: 'grades-1' }), 1500), InstanceIdInUse);
  registry.markDown(first, refused, 2000);
  registry.markDown(stale, refused, 2100);
  assert.throws(() => registry.register(reg('other', 'http://127.0.0.1:6002', [], { instanceId: 'grades-1' }), 2500), InstanceIdInUse, 'another service may not take it');
  assert.throws(() => registry.register(reg('grades', 'http://127.0.0.9:6002', [], { instanceId: 'grades-1' }), 2500), InstanceIdInUse, 'nor the same one on another host');
  const back = registry.register(reg('grades', 'http://127.0.0.1:6002', [], { instanceId: 'grades-1' }), 3000);
  assert.equal(back.created, false);
  assert.equal(back.record, first);
  assert.deepEqual(registry.list(['grades']).map((r) => [r.instanceId, r.serviceURL, r.state]), [['grades-1', 'http://127.0.0.1:6002', 'up']]);
  assert.equal(registry.getByUrl('http://127.0.0.1:6001'), undefined);
  assert.equal(first.restarts, 1);
  assert.deepEqual(first.history?.at(-1), { at: 3000, event: 'restarted', state: 'up', previous: { instanceId: 'grades-1', serviceURL: 'http://127.0.0.1:6001' } });
});

test('history: registered, down with its reason, up, registered again; bounded; a same-URL registration without an id is a restart', () => {
  const registry = new Registry();
  const echo = registry.register(reg('echo', 'http://127.0.0.1:7001'), 1000).record;
  registry.markDown(echo, { code: 'timeout', message: 'no answer within 1000 ms' }, 2000);
  registry.markUp(echo, 3000);
  registry.register(reg('echo', 'http://127.0.0.1:7001', [], { instanceId: echo.instanceId }), 4000);
  registry.register(reg('echo', 'http://127.0.0.1:7001'), 5000);
  assert.deepEqual(echo.history?.map((h) => [h.at, h.event, h.state, h.reason?.code]), [
    [1000, 'registered', 'up', undefined],
    [2000, 'down', 'down', 'timeout'],
    [3000, 'up', 'up', undefined],
    [4000, 're-registered', 'up', undefined],
    [5000, 'restarted', 'up', undefined],
  ]);
  assert.equal(echo.restarts, 1);
  assert.equal(echo.downReason, undefined, 'an up instance has no down reason');
  for (let i = 0; i < 100; i++) i % 2 ? registry.markUp(echo, 6000 + i) : registry.markDown(echo, refused, 6000 + i);
  assert.equal(echo.history?.length, HISTORY_LIMIT);
  assert.equal(echo.history?.at(-1)?.at, 6099);
});

test('a restored instance that never answered and goes down is replaced by a new one of its service on its host that raced it', () => {
  const before = new Registry();
  const saved = before.register(reg('worker', 'http://127.0.0.1:8001'), 1000).record;
  const sibling = before.register(reg('worker', 'http://127.0.0.1:8002'), 1000).record;
  const registry = new Registry();
  registry.restore({ ...saved, lastSeenAt: undefined }, 5000);
  registry.restore({ ...sibling, lastSeenAt: undefined }, 5000);
  // The new process registered before the registry's first check found the old one dead.
  const fresh = registry.register(reg('worker', 'http://127.0.0.1:8003'), 5100).record;
  registry.markUp(registry.get(sibling.instanceId)!, 5150);
  registry.markDown(registry.get(saved.instanceId)!, refused, 5200);
  assert.deepEqual(registry.list(['worker']).map((r) => r.serviceURL).sort(), ['http://127.0.0.1:8002', 'http://127.0.0.1:8003']);
  assert.equal(fresh.predecessorId, saved.instanceId);
  assert.equal(fresh.restarts, 1);
  assert.deepEqual(fresh.history?.map((h) => h.event), ['registered', 'restarted', 'down']);
});

test('only a restored instance not yet checked is handed over that way: one learnt from another replica stays, down', () => {
  const elsewhere = new Registry();
  const remote = elsewhere.register(reg('worker', 'http://127.0.0.1:8101'), 1000).record;
  const registry = new Registry();
  registry.restore(elsewhere.register(reg('other', 'http://127.0.0.1:8100'), 1000).record, 5000);
  registry.applyRemote({ ...remote, lastSeenAt: undefined }, 'registered');
  registry.register(reg('worker', 'http://127.0.0.1:8102'), 5100);
  registry.markDown(registry.get(remote.instanceId)!, refused, 5200);
  assert.deepEqual(registry.list(['worker']).map((r) => [r.serviceURL, r.state]).sort(), [['http://127.0.0.1:8101', 'down'], ['http://127.0.0.1:8102', 'up']]);
});

test('every record has the same fields in the same order, however it came: registered here, from another replica, from the file store', () => {
  const here = new Registry();
  const saved = (url: string) => JSON.parse(JSON.stringify(here.register(reg('echo', url), 1000).record)) as InstanceRecord;
  const local = here.register(reg('echo', 'http://127.0.0.1:8200'), 1000).record;
  const successor = here.register(reg('echo', 'http://127.0.0.1:8200', [], { instanceId: 'a-new-process' }), 1100).record;
  const other = new Registry();
  other.applyRemote(saved('http://127.0.0.1:8201'), 'registered');
  other.restore(saved('http://127.0.0.1:8202'), 1200);
  const records = [local, successor, ...other.list(['echo'])];
  assert.equal(records.length, 4);
  // The fields a check adds come later to each; one shape means V8 sees one hidden class on the check path.
  for (const record of records) other.recordCheck(record, { ok: true, status: 200, latencyMs: 1.5 }, { state: 'up', consecutiveFailures: 0 }, 2000);
  const shapes = new Set(records.map((record) => Object.keys(record).join(',')));
  assert.equal(shapes.size, 1, [...shapes].join('\n'));
});
