import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DueQueue } from './dueQueue.ts';

test('pops in due order, whatever the order of pushes, ties included', () => {
  const queue = new DueQueue();
  const times = Array.from({ length: 500 }, (_, i) => (i * 7919) % 101);
  times.forEach((at, i) => queue.push(at, `id-${i}`));
  assert.equal(queue.size, 500);
  const popped: number[] = [];
  while (queue.size > 0) {
    popped.push(queue.pop().at);
  }
  assert.deepEqual(popped, [...times].sort((a, b) => a - b));
  assert.equal(queue.peek(), Infinity);
});

test('an entry keeps its id, and a rescheduled id appears twice (the caller skips the stale one)', () => {
  const queue = new DueQueue();
  queue.push(30, 'a');
  queue.push(10, 'b');
  queue.push(20, 'a');
  assert.deepEqual([queue.pop(), queue.pop(), queue.pop()], [
    { at: 10, id: 'b' },
    { at: 20, id: 'a' },
    { at: 30, id: 'a' },
  ]);
});
