import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envInt, parseWholeNumber } from './config.ts';

test('parseWholeNumber takes whole numbers within the bounds and nothing else', () => {
  assert.equal(parseWholeNumber('0'), 0);
  assert.equal(parseWholeNumber('65535', 0, 65535), 65535);
  assert.equal(parseWholeNumber(' 12 '), 12);
  for (const text of ['', '  ', '-1', '1.5', 'abc', 'NaN', 'Infinity', '1e400']) assert.equal(parseWholeNumber(text), undefined, text);
  assert.equal(parseWholeNumber('65536', 0, 65535), undefined);
  assert.equal(parseWholeNumber('0', 1), undefined);
});

test('envInt falls back on a missing or empty variable and refuses anything but a whole number', () => {
  assert.equal(envInt('X', 7, {}), 7);
  assert.equal(envInt('X', 7, { X: '' }), 7);
  assert.equal(envInt('X', 7, { X: '30' }), 30);
  assert.throws(() => envInt('X', 7, { X: '2.5' }), /X must be a non-negative integer, got "2.5"/);
  assert.throws(() => envInt('X', 7, { X: '-3' }), /X must be a non-negative integer/);
});
