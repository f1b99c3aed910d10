/**
 * The registry session against a fake registry client: what a registration's answer, the patches and the
 * re-syncs leave in the provider table, and when the session registers again.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ProviderTable } from './providers.ts';
import { RegistrySession, type SessionRegistration, type SessionRegistry } from './registrySession.ts';
import { RegistryError } from '../registry/client.ts';
import type { LeaseResponse, PatchBody, ProviderMap, RegisterResponse, RegistrationInput } from '../registry/protocol.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A registry client that records every call; each test says how it answers. */
class FakeRegistry implements SessionRegistry {
  readonly registrations: RegistrationInput[] = [];
  readonly listings: string[][] = [];
  readonly renewals: string[] = [];
  /** Answers registration number i (from 0). */
  onRegister: (registration: RegistrationInput, i: number) => Promise<RegisterResponse> = async (_r, i) => answer({ instanceId: `id-${i}` });
  onProviders: (names: string[], i: number) => Promise<ProviderMap> = async (names) => Object.fromEntries(names.map((n) => [n, []]));
  onRenew: (instanceId: string) => Promise<LeaseResponse> = async (instanceId) => ({ instanceId, leaseExpiresAt: '', providers: {} });

  register(registration: RegistrationInput): Promise<RegisterResponse> {
    this.registrations.push(registration);
    return this.onRegister(registration, this.registrations.length - 1);
  }
  providers(names: string[]): Promise<ProviderMap> {
    this.listings.push(names);
    return this.onProviders(names, this.listings.length - 1);
  }
  renewLease(instanceId: string): Promise<LeaseResponse> {
    this.renewals.push(instanceId);
    return this.onRenew(instanceId);
  }
  async deregister(): Promise<never> {
    throw new RegistryError(0, 'unreachable', 'not in this test');
  }
}

function answer(fields: Partial<RegisterResponse>): RegisterResponse {
  return { instanceId: 'id-0', providers: {}, seq: 0, heartbeatIntervalMs: 1000, ...fields };
}

const registration: SessionRegistration = {
  serviceName: 'consumer',
  serviceURL: 'http://127.0.0.1:9999',
  requiredServices: ['echo'],
  serviceUpdateURL: 'http://127.0.0.1:9999/services',
  heartbeatURL: 'http://127.0.0.1:9999/heartbeat',
};

function startSession(t: TestContext, registry: FakeRegistry, options: { leaseTtlSeconds?: number; now?: () => number } = {}) {
  const providers = new ProviderTable();
  providers.replace('echo', []);
  const lines: string[] = [];
  const record = (message: string) => lines.push(message);
  let resyncs = 0;
  const session = new RegistrySession({
    registry,
    registryUrl: 'http://registry',
    providers,
    requiredServices: ['echo'],
    logger: { info: record, warn: record, error: record },
    onResync: () => resyncs++,
    backoff: { initialMs: 1, maxMs: 2 },
    ...options,
  });
  session.start(registration);
  t.after(() => session.close());
  return { session, providers, lines, resyncs: () => resyncs };
}

/** Registered, with the registration loop wound up (a check while it runs is skipped). */
async function registered(session: RegistrySession): Promise<void> {
  await session.registered;
  await tick();
}

/** Lets the fake's answers (already resolved promises) reach the session. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await tick();
  assert.ok(condition(), what);
}

const patch = (seq: number | undefined, added: string[] = [], removed: string[] = []): PatchBody => ({
  added: added.map((url) => ({ name: 'echo', url })),
  removed: removed.map((url) => ({ name: 'echo', url })),
  seq,
});

test('the answer fills the table; patches in order apply, with no re-sync; a patch about a service not required is ignored', async (t) => {
  const registry = new FakeRegistry();
  registry.onRegister = async () => answer({ instanceId: 'abc', providers: { echo: ['http://a'] }, seq: 4 });
  const { session, providers, resyncs } = startSession(t, registry);
  await session.registered;
  assert.equal(session.instanceId, 'abc');
  assert.deepEqual(providers.get('echo'), ['http://a']);

  session.applyPatch(patch(5, ['http://b']));
  session.applyPatch(patch(6, [], ['http://a']));
  session.applyPatch({ added: [{ name: 'other', url: 'http://c' }], removed: null, seq: 7 });
  assert.deepEqual(providers.get('echo'), ['http://b']);
  assert.deepEqual(providers.get('other'), []);
  await tick();
  assert.equal(registry.listings.length, 0, 'no listing fetched');
  assert.equal(resyncs(), 0);
});

test('the first patch, delivered before the answer and carrying its seq, is not a gap', async (t) => {
  const registry = new FakeRegistry();
  let session!: RegistrySession;
  registry.onRegister = async () => {
    await tick();
    // The registry delivers the first patch before it answers, and answers with that patch's seq.
    session.applyPatch(patch(1, ['http://a']));
    return answer({ instanceId: 'abc', providers: { echo: ['http://a'] }, seq: 1 });
  };
  const started = startSession(t, registry);
  session = started.session;
  await session.registered;
  session.applyPatch(patch(2, ['http://b']));
  await tick();
  assert.deepEqual(started.providers.get('echo'), ['http://a', 'http://b']);
  assert.equal(registry.listings.length, 0, 'no re-sync');
});

test('a patch newer than the answer (it raced the answer) means the answer may be stale: one re-sync', async (t) => {
  const registry = new FakeRegistry();
  let session!: RegistrySession;
  registry.onRegister = async () => {
    await tick();
    session.applyPatch(patch(1, ['http://a']));
    session.applyPatch(patch(2, ['http://b']));
    // Built before patch 2: it lists only a.
    return answer({ instanceId: 'abc', providers: { echo: ['http://a'] }, seq: 1 });
  };
  registry.onProviders = async () => ({ echo: ['http://a', 'http://b'] });
  const started = startSession(t, registry);
  session = started.session;
  await session.registered;
  await until(() => started.resyncs() === 1, 'a re-sync');
  assert.equal(registry.listings.length, 1);
  assert.deepEqual(registry.listings[0], ['echo']);
  assert.deepEqual(started.providers.get('echo'), ['http://a', 'http://b']);
});

test('a gap in seq: exactly one re-sync puts the registry\'s list back; later patches count from the new seq', async (t) => {
  const registry = new FakeRegistry();
  registry.onRegister = async () => answer({ providers: { echo: ['http://a'] }, seq: 1 });
  registry.onProviders = async () => ({ echo: ['http://a', 'http://c'] });
  const { session, providers, lines, resyncs } = startSession(t, registry);
  await session.registered;

  session.applyPatch(patch(5, [], ['http://a'])); // 2, 3 and 4 were lost
  assert.deepEqual(providers.get('echo'), []);
  await until(() => resyncs() === 1, 'the re-sync');
  assert.deepEqual(providers.get('echo'), ['http://a', 'http://c']);
  assert.ok(lines.some((l) => /patch 5 where 2 was expected: re-syncing/.test(l)), lines.join('\n'));

  session.applyPatch(patch(6, ['http://d']));
  session.applyPatch(patch(undefined, ['http://e'])); // Go's patches carry no seq: applied, never a gap
  await tick();
  assert.equal(registry.listings.length, 1, 'one listing in all');
  assert.deepEqual(providers.get('echo'), ['http://a', 'http://c', 'http://d', 'http://e']);
});

test('a re-sync racing a patch fetches again, one listing at a time, and the newer listing stands', async (t) => {
  const registry = new FakeRegistry();
  registry.onRegister = async () => answer({ providers: { echo: ['http://a'] }, seq: 1 });
  const listings = [deferred<ProviderMap>(), deferred<ProviderMap>()];
  registry.onProviders = (_names, i) => listings[i].promise;
  const { session, providers, resyncs } = startSession(t, registry);
  await registered(session);

  const resync = session.resync();
  await tick();
  // A patch lands while the listing is on its way: the listing may be older than it.
  session.applyPatch(patch(2, ['http://b']));
  listings[0].resolve({ echo: ['http://a'] });
  await until(() => registry.listings.length === 2, 'a second listing');
  assert.equal(resyncs(), 1, 'the first listing was applied before the second was asked for');
  listings[1].resolve({ echo: ['http://a', 'http://b'] });
  await resync;
  assert.equal(resyncs(), 2);
  assert.deepEqual(providers.get('echo'), ['http://a', 'http://b']);
});

test('re-syncs asked for while one runs share it: two gaps in flight make one more listing, not two at once', async (t) => {
  const registry = new FakeRegistry();
  registry.onRegister = async () => answer({ providers: { echo: ['http://a'] }, seq: 1 });
  const listings = [deferred<ProviderMap>(), deferred<ProviderMap>()];
  registry.onProviders = (_names, i) => listings[i].promise;
  const { session, providers } = startSession(t, registry);
  await registered(session);

  session.applyPatch(patch(3));
  const shared = session.resync();
  session.applyPatch(patch(9));
  await tick();
  assert.equal(registry.listings.length, 1, 'one listing in flight');
  listings[0].resolve({ echo: ['http://a'] });
  await until(() => registry.listings.length === 2, 'the listing again');
  listings[1].resolve({ echo: ['http://z'] });
  await shared;
  await tick();
  assert.equal(registry.listings.length, 2);
  assert.deepEqual(providers.get('echo'), ['http://z']);
});

test('a lease renewal answered 404 (the registry forgot us) registers again, under the same instance id', async (t) => {
  const registry = new FakeRegistry();
  registry.onRenew = async () => {
    throw new RegistryError(404, 'not_found', 'no such instance');
  };
  const { session, lines } = startSession(t, registry, { leaseTtlSeconds: 60 });
  await registered(session);
  assert.equal(registry.registrations.length, 1);

  session.checkRegistration();
  await until(() => registry.registrations.length === 2, 'a second registration');
  assert.deepEqual(registry.renewals, ['id-0']);
  assert.equal(registry.registrations[1].instanceId, 'id-0');
  assert.ok(lines.some((l) => /does not know our lease; registering again/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /registered again as consumer \(id-1\)/.test(l)), lines.join('\n'));
});

test('a lease renewal fills the table, unless a patch arrived while it was on its way; other failures only warn', async (t) => {
  const registry = new FakeRegistry();
  const renewal = deferred<LeaseResponse>();
  registry.onRenew = () => renewal.promise;
  const { session, providers, lines } = startSession(t, registry, { leaseTtlSeconds: 60 });
  await registered(session);

  session.checkRegistration();
  session.applyPatch(patch(1, ['http://b']));
  renewal.resolve({ instanceId: 'id-0', leaseExpiresAt: '', providers: { echo: ['http://old'] } });
  await tick();
  assert.deepEqual(providers.get('echo'), ['http://b'], 'the patch is newer than the renewal');

  registry.onRenew = async (instanceId) => ({ instanceId, leaseExpiresAt: '', providers: { echo: ['http://c'] } });
  session.checkRegistration();
  await until(() => providers.get('echo').includes('http://c'), 'the renewal to fill the table');

  registry.onRenew = async () => {
    throw new RegistryError(0, 'unreachable', 'registry unreachable');
  };
  session.checkRegistration();
  await until(() => lines.some((l) => /lease renewal failed/.test(l)), 'the warning');
  assert.equal(registry.registrations.length, 1, 'no new registration');
});

test('no heartbeat check for more than four intervals and a second: register again', async (t) => {
  const registry = new FakeRegistry();
  registry.onRegister = async (_r, i) => answer({ instanceId: 'abc', heartbeatIntervalMs: 100 + i });
  let now = 1_000_000;
  const { session, lines } = startSession(t, registry, { now: () => now });
  await registered(session);

  now += 1400; // exactly 4 × 100 + 1000: not yet
  session.checkRegistration();
  session.heartbeat();
  now += 1400;
  session.checkRegistration();
  assert.equal(registry.registrations.length, 1, 'checked recently enough');

  now += 1;
  session.checkRegistration();
  await until(() => registry.registrations.length === 2, 'a second registration');
  assert.ok(lines.some((l) => /no heartbeat check from the registry for 1401 ms; registering again/.test(l)), lines.join('\n'));
  await until(() => lines.some((l) => /registered again/.test(l)), 'the new registration');
});

test('a registry that is unreachable is retried with backoff; one that refuses is logged as an error', async (t) => {
  const registry = new FakeRegistry();
  registry.onRegister = async (_r, i) => {
    if (i === 0) throw new RegistryError(0, 'unreachable', 'registry unreachable');
    if (i === 1) throw new RegistryError(400, 'invalid_field', 'serviceURL: bad');
    return answer({ instanceId: 'abc' });
  };
  const { session, lines } = startSession(t, registry);
  await session.registered;
  assert.equal(registry.registrations.length, 3);
  assert.match(lines[0], /cannot register with http:\/\/registry \(registry unreachable\); retrying with backoff/);
  assert.match(lines[1], /the registry refused our registration: serviceURL: bad/);
  assert.match(lines[2], /registered as consumer \(abc\)/);
});
