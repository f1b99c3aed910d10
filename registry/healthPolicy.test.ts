import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextHealth, type Health } from './healthPolicy.ts';
import type { OutboundResult } from './outbound.ts';

const ok: OutboundResult = { ok: true, status: 200, latencyMs: 1 };
const timeout: OutboundResult = { ok: false, kind: 'timeout', message: 'no answer within 1000 ms', latencyMs: 1000 };
const badStatus: OutboundResult = { ok: false, kind: 'status', status: 503, message: 'answered 503', latencyMs: 2 };
const refused: OutboundResult = { ok: false, kind: 'connection', message: 'ECONNREFUSED', latencyMs: 1 };
const options = { heartbeatFailures: 3 };
const up: Health = { state: 'up', consecutiveFailures: 0 };

const after = (results: OutboundResult[], from = up) => results.reduce((health, result) => nextHealth(health, result, options), from);

test('timeouts and bad statuses put an instance down on the heartbeatFailures-th in a row, not before', () => {
  assert.deepEqual(after([timeout, badStatus]), { state: 'up', consecutiveFailures: 2 });
  assert.deepEqual(after([timeout, badStatus, timeout]), { state: 'down', consecutiveFailures: 3 });
  assert.deepEqual(after([timeout, timeout, ok, timeout, timeout]), { state: 'up', consecutiveFailures: 2 }, 'an answer in between starts the count again');
});

test('a refused connection is down at once; any answer brings a down instance up', () => {
  assert.deepEqual(after([refused]), { state: 'down', consecutiveFailures: 1 });
  assert.deepEqual(after([refused, timeout]), { state: 'down', consecutiveFailures: 2 }, 'down stays down while checks fail');
  assert.deepEqual(after([refused, ok]), { state: 'up', consecutiveFailures: 0 });
});

test('the threshold is configuration: 1 means the first failure', () => {
  assert.equal(nextHealth(up, timeout, { heartbeatFailures: 1 }).state, 'down');
});
