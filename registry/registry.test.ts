import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, type RegistryChange } from './registry.ts';
import { registrationSchema, type Registration } from './protocol.ts';

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
  registry.markDown(a, 'refused');
  registry.markDown(a, 'refused again');
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
  registry.markDown(worker, 'lease expired', 4000);
  registry.renewLease(worker, 5000);
  assert.equal(worker.state, 'up');
  assert.equal(worker.leaseExpiresAt, 7000);
});
