import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventQueue } from './queue.ts';
import type { StoredEvent } from './event.ts';

const event = (id: number, time = 1000, bytes = 10): StoredEvent => ({ id, topic: 't', seq: id, time, contentType: 'application/json', payload: Buffer.alloc(bytes) });

test('a queue past its bound drops the oldest, counts them, and keeps the count until it is reported', () => {
  const queue = new EventQueue({ maxEvents: 3, maxBytes: 1e9 });
  for (let id = 1; id <= 5; id++) queue.push(event(id));
  assert.equal(queue.length, 3);
  assert.equal(queue.first()?.id, 3);
  assert.equal(queue.unreported, 2);
  assert.equal(queue.droppedTotal, 2);
  assert.deepEqual(queue.take(10, 1e9, () => 1).map((e) => e.id), [3, 4, 5]);
  assert.equal(queue.length, 0);
});

test('the byte bound holds too, but one event is always kept', () => {
  const queue = new EventQueue({ maxEvents: 100, maxBytes: 1000 });
  queue.push(event(1, 1000, 2000));
  assert.equal(queue.length, 1, 'an event bigger than the bound is kept alone');
  queue.push(event(2, 1000, 100));
  assert.equal(queue.first()?.id, 2);
  assert.ok(queue.sizeBytes <= 1000);
});

test('take() fits batches to a byte budget (at least one event), and expire() drops what is too old', () => {
  const queue = new EventQueue({ maxEvents: 100, maxBytes: 1e9 });
  for (let id = 1; id <= 6; id++) queue.push(event(id, id * 100));
  assert.deepEqual(queue.take(10, 25, () => 10).map((e) => e.id), [1, 2]);
  assert.deepEqual(queue.take(10, 5, () => 10).map((e) => e.id), [3], 'one even when it alone is over the budget');
  assert.equal(queue.expire(550), 2, 'ids 4 and 5 were accepted before the cutoff');
  assert.equal(queue.first()?.id, 6);
  assert.equal(queue.unreported, 2);
});
