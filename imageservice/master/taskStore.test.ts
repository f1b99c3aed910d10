import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, waitFor } from '../../test/helpers.ts';
import { postgresForSuite } from '../../harness/postgres.ts';
import { HttpError } from '../../shared/errors.ts';
import { pgDefaults } from './config.ts';
import { openTaskStore, type TaskStore, type TaskStoreOptions } from './taskStore.ts';
import { SqliteTaskStore } from './sqliteTasks.ts';
import { PgTaskStore } from './pgTasks.ts';
import { TASK_MIGRATIONS } from './pgSchema.ts';

/** One kind of store: a fresh, empty place for one, and how to open a store (another "master") there. */
interface Backend {
  name: string;
  skip: string | false;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  freshLocation(): Promise<string>;
  open(location: string, options: TaskStoreOptions): Promise<TaskStore>;
}

const postgres = postgresForSuite('tasks');
const pgSettings = (url: string) => ({ ...pgDefaults, url, pollMs: 60_000, connectTimeoutMs: 2_000 });
const quiet = () => {};
const listening = (store: TaskStore) => (store as unknown as PgTaskStore).listening;

const backends: Backend[] = [
  {
    name: 'SQLite',
    skip: false,
    async setup() {},
    async teardown() {},
    async freshLocation() {
      return tempDir('tasks-store-');
    },
    async open(dir, options) {
      return new SqliteTaskStore(dir, options);
    },
  },
  {
    name: 'PostgreSQL',
    skip: postgres.skip,
    setup: postgres.setup,
    teardown: postgres.teardown,
    freshLocation: postgres.freshLocation,
    async open(url, options) {
      return PgTaskStore.open(pgSettings(url), options, quiet);
    },
  },
];

const image = (n: number) => ({ op: 'invert' as const, imageKey: `key-${n}`, width: 16, height: 16, bytes: 100 + n });

for (const backend of backends) {
  describe(`task store on ${backend.name}`, { skip: backend.skip }, () => {
    const open: TaskStore[] = [];
    const fresh = async (options: Partial<TaskStoreOptions> = {}, location?: string) => {
      const where = location ?? (await backend.freshLocation());
      const store = await backend.open(where, { leaseMs: 30_000, maxAttempts: 3, ...options });
      open.push(store);
      return Object.assign(store, { where });
    };
    before(() => backend.setup());
    after(async () => {
      for (const store of open) await store.close().catch(() => undefined);
      await backend.teardown();
    });

    test('create, get, list and counts', async () => {
      const store = await fresh();
      const a = await store.create({ ...image(1), traceId: 'trace-1' });
      const b = await store.create(image(2));
      assert.ok(b.id > a.id);
      assert.equal(a.state, 'pending');
      assert.equal(a.traceId, 'trace-1');
      assert.equal(a.bytes, 101);
      assert.equal(typeof a.id, 'number');
      assert.deepEqual(await store.get(a.id), a);
      assert.equal(await store.imageKey(b.id), 'key-2');
      assert.equal(await store.get(9999), undefined);
      assert.deepEqual((await store.list(undefined, 10)).map((t) => t.id), [b.id, a.id]);
      assert.deepEqual(await store.list('done', 10), []);
      assert.deepEqual(await store.counts(), { pending: 2, running: 0, done: 0, failed: 0 });
      assert.equal(await store.hasImageKey('key-1'), true);
      assert.equal(await store.hasImageKey('nope'), false);
    });

    test('claims lease the oldest task first, once each; completion is idempotent for its lease', async () => {
      const store = await fresh();
      const a = await store.create(image(1));
      const b = await store.create(image(2));
      const first = (await store.claim('w1'))!;
      const second = (await store.claim('w2'))!;
      assert.equal(first.id, a.id);
      assert.equal(second.id, b.id);
      assert.equal(first.attempt, 1);
      assert.equal(first.imageKey, 'key-1');
      assert.ok(Date.parse(first.leaseExpiresAt) > Date.now() + 20_000);
      assert.equal(await store.claim('w3'), undefined);
      assert.equal((await store.get(a.id))!.workerId, 'w1');
      assert.equal((await store.renew(a.id, first.leaseToken)).outcome, 'ok');
      const done = await store.complete(a.id, first.leaseToken, 123);
      assert.equal(done.outcome, 'completed');
      assert.equal(done.task!.resultBytes, 123);
      assert.equal((await store.complete(a.id, first.leaseToken, 123)).outcome, 'already_completed');
      assert.deepEqual(await store.counts(), { pending: 0, running: 1, done: 1, failed: 0 });
      // A release gives the attempt back.
      const released = await store.release(b.id, second.leaseToken);
      assert.equal(released.task!.state, 'pending');
      assert.equal(released.task!.attempts, 0);
    });

    test('releaseHeldBy gives back, uncounted, only what those worker ids still hold', async () => {
      const store = await fresh();
      const [a, b, c, d] = [await store.create(image(1)), await store.create(image(2)), await store.create(image(3)), await store.create(image(4))];
      const unread = (await store.claim('w/0'))!;
      const kept = (await store.claim('w/1'))!;
      const other = (await store.claim('x/0'))!;
      const finished = (await store.claim('w/2'))!;
      assert.deepEqual([unread.id, kept.id, other.id, finished.id], [a.id, b.id, c.id, d.id]);
      assert.equal((await store.complete(d.id, finished.leaseToken, 1)).outcome, 'completed');
      assert.deepEqual(await store.releaseHeldBy(['w/0', 'w/2', 'nobody']), [a.id]);
      const back = (await store.get(a.id))!;
      assert.equal(back.state, 'pending');
      assert.equal(back.attempts, 0);
      assert.equal(back.workerId, null);
      // The given-back lease is dead; the others are untouched.
      assert.equal((await store.complete(a.id, unread.leaseToken, 1)).outcome, 'lease_expired');
      assert.equal((await store.get(b.id))!.state, 'running');
      assert.equal((await store.get(c.id))!.state, 'running');
      assert.equal((await store.get(d.id))!.state, 'done');
      assert.deepEqual(await store.releaseHeldBy(['w/0']), []);
      assert.equal((await store.claim('y/0'))!.id, a.id);
    });

    test('a lapsed lease is claimed again, and the old token is refused everywhere', async () => {
      const store = await fresh({ leaseMs: 150 });
      const task = await store.create(image(1));
      const stale = (await store.claim('w1'))!;
      // The reaper's pass (SQLite needs it; PostgreSQL's claim also takes lapsed leases itself).
      const again = (await waitFor(async () => {
        if (backend.name === 'SQLite') await store.expireLeases();
        return store.claim('w2');
      }, 'the lapsed task to be claimable', 10_000))!;
      assert.equal(again.id, task.id);
      assert.equal(again.attempt, 2);
      assert.notEqual(again.leaseToken, stale.leaseToken);
      assert.equal((await store.get(task.id))!.error, 'lease lapsed on attempt 1 (worker w1)');
      assert.equal((await store.renew(task.id, stale.leaseToken)).outcome, 'lease_expired');
      assert.equal((await store.fail(task.id, stale.leaseToken, 'late', true)).outcome, 'lease_expired');
      assert.equal((await store.release(task.id, stale.leaseToken)).outcome, 'lease_expired');
      assert.equal((await store.complete(task.id, stale.leaseToken, 1)).outcome, 'lease_expired');
      assert.equal((await store.get(task.id))!.workerId, 'w2');
      assert.equal((await store.complete(task.id, again.leaseToken, 7)).outcome, 'completed');
      // The stale worker, later still: the task is done by another lease, and stays as that lease left it.
      const late = await store.complete(task.id, stale.leaseToken, 1);
      assert.equal(late.outcome, 'already_done');
      assert.equal(late.task!.resultBytes, 7);
      assert.equal((await store.renew(task.id, stale.leaseToken)).outcome, 'not_running');
      assert.equal((await store.complete(424242, stale.leaseToken, 1)).outcome, 'unknown');
      assert.equal((await store.renew(424242, stale.leaseToken)).outcome, 'unknown');
    });

    test('attempts run out: lapses and retryable failures end failed with the reason', async () => {
      const store = await fresh({ leaseMs: 100, maxAttempts: 2 });
      const lapsing = await store.create(image(1));
      await store.claim('w1');
      await waitFor(async () => (await store.expireLeases()).returned.includes(lapsing.id), 'the first lapse', 10_000);
      assert.equal((await store.get(lapsing.id))!.state, 'pending');
      const second = (await store.claim('w1'))!;
      assert.equal(second.attempt, 2);
      if (backend.name === 'PostgreSQL') {
        // Out of attempts: the claim does not take it again, even lapsed.
        await waitFor(async () => (await store.nextLeaseExpiry())! <= Date.now(), 'the second lease to lapse', 10_000);
        assert.equal(await store.claim('w2'), undefined);
      }
      await waitFor(async () => (await store.expireLeases()).failed.includes(lapsing.id), 'the last lapse', 10_000);
      const failed = (await store.get(lapsing.id))!;
      assert.equal(failed.state, 'failed');
      assert.equal(failed.error, 'gave up after 2 attempts: the lease lapsed each time (worker w1)');
      assert.ok(failed.finishedAt);

      const retried = await store.create(image(2));
      const one = (await store.claim('w1'))!;
      const back = await store.fail(retried.id, one.leaseToken, 'storage away', true);
      assert.equal(back.task!.state, 'pending');
      assert.equal(back.task!.error, 'storage away');
      const two = (await store.claim('w1'))!;
      const out = await store.fail(retried.id, two.leaseToken, 'storage away', true);
      assert.equal(out.task!.state, 'failed');
      assert.equal(out.task!.error, 'gave up after 2 attempts: storage away');
      const bad = await store.create(image(3));
      const lease = (await store.claim('w1'))!;
      const hopeless = await store.fail(bad.id, lease.leaseToken, 'not a PNG', false);
      assert.equal(hopeless.task!.state, 'failed');
      assert.equal(hopeless.task!.error, 'not a PNG');
      assert.equal((await store.fail(bad.id, lease.leaseToken, 'again', false)).outcome, 'not_running');
      assert.deepEqual(await store.counts(), { pending: 0, running: 0, done: 0, failed: 3 });
    });

    test('ids are never reused: not after the newest is removed, nor by another opening of the store', async () => {
      const store = await fresh();
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await store.create(image(i))).id);
      const leases = [];
      for (let i = 0; i < 3; i++) leases.push((await store.claim('w'))!);
      // Finish and remove the newest task, then reopen: the next id is still a new one.
      assert.equal((await store.complete(ids[2], leases[2].leaseToken, 1)).outcome, 'completed');
      assert.equal(await store.removeFinished(ids[2]), true);
      assert.equal(await store.removeFinished(ids[0]), false, 'a running task is never removed');
      await store.close();
      open.splice(open.indexOf(store), 1);
      const reopened = await fresh({}, store.where);
      const next = await reopened.create(image(9));
      assert.ok(next.id > ids[2], `id ${next.id} after ${ids.join(', ')}`);
      assert.deepEqual(await reopened.finishedBefore(Date.now() + 1000, 0, 10), []);
    });

    test('8 claimers racing over 200 tasks, on two openings of the store: each task claimed exactly once', async () => {
      const a = await fresh();
      const b = backend.name === 'SQLite' ? a : await fresh({}, a.where);
      const created = new Set<number>();
      for (let i = 0; i < 200; i++) created.add((await (i % 2 ? a : b).create(image(i))).id);
      const claimedBy = new Map<number, string>();
      const duplicates: number[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async (_, c) => {
          const store = c % 2 ? a : b;
          for (;;) {
            const task = await store.claim(`claimer-${c}`);
            if (!task) return;
            if (claimedBy.has(task.id)) duplicates.push(task.id);
            claimedBy.set(task.id, `claimer-${c}`);
            assert.equal((await store.complete(task.id, task.leaseToken, 1)).outcome, 'completed');
          }
        }),
      );
      assert.deepEqual(duplicates, []);
      assert.deepEqual([...claimedBy.keys()].sort((x, y) => x - y), [...created].sort((x, y) => x - y));
      assert.deepEqual(await a.counts(), { pending: 0, running: 0, done: 200, failed: 0 });
      if (backend.name === 'PostgreSQL') assert.ok(new Set(claimedBy.values()).size > 1, 'the claims were spread over the claimers');
    });

    test('retention reads: finished before a time, by id; pending and running tasks are never removed', async () => {
      const store = await fresh();
      const done = await store.create(image(1));
      await store.create(image(2));
      const lease = (await store.claim('w'))!;
      await store.complete(done.id, lease.leaseToken, 1);
      assert.deepEqual(await store.finishedBefore(Date.now() - 60_000, 0, 10), []);
      const page = await store.finishedBefore(Date.now() + 60_000, 0, 10);
      assert.deepEqual(page, [{ id: done.id, imageKey: 'key-1' }]);
      assert.deepEqual(await store.finishedBefore(Date.now() + 60_000, done.id, 10), []);
      assert.equal(await store.removeFinished(done.id), true);
      assert.equal(await store.removeFinished(done.id), false);
      assert.deepEqual(await store.counts(), { pending: 1, running: 0, done: 0, failed: 0 });
    });

    if (backend.name === 'PostgreSQL') {
      test('PostgreSQL: two masters migrating at once, one schema; a new task wakes the other master', async () => {
        const url = await backend.freshLocation();
        const [a, b] = await Promise.all([fresh({}, url), fresh({}, url)]);
        assert.equal(postgres.server.sql(`SELECT count(*) FROM schema_migrations WHERE component = 'imagemaster'`, url.split('/').pop()).trim(), String(TASK_MIGRATIONS.length));
        let woken = 0;
        b.watch(() => woken++, quiet);
        await waitFor(() => listening(b), 'the LISTEN connection');
        const before = woken;
        await a.create(image(1));
        await waitFor(() => woken > before, 'the notification at the other master', 5_000);
      });

      test('PostgreSQL away: calls answer 503 with Retry-After, then work again, and LISTEN comes back', async () => {
        const url = await backend.freshLocation();
        const store = await fresh({}, url);
        let woken = 0;
        store.watch(() => woken++, quiet);
        await waitFor(() => listening(store), 'the LISTEN connection');
        await postgres.server.kill();
        const err = await store.claim('w').then(() => assert.fail('a claim with the database away'), (e: unknown) => e);
        assert.ok(err instanceof HttpError, String(err));
        assert.equal(err.status, 503);
        assert.equal(err.code, 'database_unavailable');
        assert.equal(err.headers['Retry-After'], '1');
        await postgres.server.restart();
        const task = (await waitFor(() => store.create(image(1)).catch(() => undefined), 'the store to work again', 20_000))!;
        await waitFor(() => listening(store), 'LISTEN again', 20_000);
        const before = woken;
        const other = await fresh({}, url);
        await other.create(image(2));
        await waitFor(() => woken > before, 'a notification after the restart', 5_000);
        assert.equal((await store.claim('w'))!.id, task.id);
      });

      test('PostgreSQL at start: away is waited for, with a warning; a refusal ends the start with the reason', async () => {
        const url = await backend.freshLocation();
        const options = { leaseMs: 30_000, maxAttempts: 3 };
        await postgres.server.kill();
        const warnings: string[] = [];
        let opened = false;
        const opening = openTaskStore({ kind: 'postgres', dataDir: '', pg: pgSettings(url) }, options, (m) => warnings.push(m)).then((store) => {
          opened = true;
          open.push(store);
          return store;
        });
        await waitFor(() => warnings.length > 0, 'a warning while the database is away');
        assert.match(warnings[0], /is unavailable .*waiting for it/);
        assert.equal(opened, false);
        await postgres.server.restart();
        const store = await opening;
        assert.equal((await store.create(image(1))).state, 'pending');
        const missing = url.replace(/[^/]+$/, 'no_such_database');
        await assert.rejects(openTaskStore({ kind: 'postgres', dataDir: '', pg: pgSettings(missing) }, options, quiet), /refused: database "no_such_database" does not exist/);
        await assert.rejects(openTaskStore({ kind: 'postgres', dataDir: '' }, options, quiet), /needs DATABASE_URL/);
      });
    }
  });
}
