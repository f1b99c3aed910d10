/** Buckets of log volume: round widths aligned to themselves, counts by level, nothing outside the range. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countVolume, stepFor } from './volume.ts';

test('the width is the smallest round one that covers the span in the buckets asked for', () => {
  assert.equal(stepFor(60_000, 60), 1000);
  assert.equal(stepFor(60_001, 60), 2000);
  assert.equal(stepFor(3_600_000, 60), 60_000);
  assert.equal(stepFor(5, 60), 1);
  assert.equal(stepFor(10 * 365 * 86_400_000, 5), 2 * 365 * 86_400_000);
});

test('lines are counted in their bucket and by level; lines outside the range are not', () => {
  const t0 = Date.parse('2025-01-01T10:00:00Z');
  const times = [t0 + 500, t0 + 1500, t0 + 1600, t0 + 3999, t0 - 1, t0 + 5000];
  const ranks = [2, 0, 7, 1, 2, 2]; // info, error, (unknown rank: info), warn, before from, after to
  const volume = countVolume(times, ranks, { fromMs: t0, toMs: t0 + 3999, buckets: 4 });
  assert.equal(volume.stepMs, 1000);
  assert.deepEqual(volume.buckets.map((b) => b.count), [1, 2, 0, 1]);
  assert.deepEqual(volume.buckets[1].levels, { error: 1, info: 1 });
  assert.equal(volume.total, 4);
  assert.equal(volume.buckets[0].time, '2025-01-01T10:00:00.000Z');
});

test('without a range: from the earliest line to now; with no lines, one empty bucket', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');
  const volume = countVolume([now - 3_600_000], [2], { buckets: 60, now });
  assert.equal(volume.from, '2025-01-01T11:00:00.000Z');
  assert.equal(volume.to, '2025-01-01T12:00:00.000Z');
  assert.equal(volume.total, 1);
  assert.ok(volume.buckets.length <= 61);
  assert.deepEqual(countVolume([], [], { buckets: 60, now }).buckets.map((b) => b.count), [0]);
});
