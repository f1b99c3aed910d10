import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupSync } from './groupSync.ts';

/** A sync that runs until released, counting its runs. */
function controlledSync() {
  const releases: (() => void)[] = [];
  let runs = 0;
  const sync = () =>
    new Promise<void>((resolve) => {
      runs++;
      releases.push(resolve);
    });
  return { sync, runs: () => runs, release: () => releases.shift()!() };
}

test('callers that arrive while a sync runs share one next sync; none is answered by a sync that began before it asked', async () => {
  const c = controlledSync();
  const group = new GroupSync(c.sync);
  let firstDone = false;
  const first = group.request().then(() => (firstDone = true));
  assert.equal(c.runs(), 1);
  // Three writers finish their renames while the first sync runs: they need a sync that starts after them.
  const waiting = [group.request(), group.request(), group.request()];
  let waitersDone = 0;
  for (const w of waiting) void w.then(() => waitersDone++);
  assert.equal(c.runs(), 1, 'no second sync while the first runs');
  c.release();
  await first;
  assert.ok(firstDone);
  await new Promise((r) => setImmediate(r));
  assert.equal(waitersDone, 0, 'the first sync does not answer the later callers');
  assert.equal(c.runs(), 2, 'one sync for all three');
  c.release();
  await Promise.all(waiting);
  assert.equal(waitersDone, 3);
  // Idle again: the next caller starts a sync at once.
  const later = group.request();
  assert.equal(c.runs(), 3);
  c.release();
  await later;
});

test('a failed sync fails its callers, and the next callers get a fresh sync', async () => {
  let fail = true;
  let runs = 0;
  const group = new GroupSync(async () => {
    runs++;
    if (fail) throw new Error('EIO');
  });
  await assert.rejects(group.request(), /EIO/);
  fail = false;
  await group.request();
  assert.equal(runs, 2);
});
