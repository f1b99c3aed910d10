import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProviderTable } from './providers.ts';

test('picks round-robin, skipping excluded instances', () => {
  const table = new ProviderTable();
  table.replace('echo', ['a', 'b', 'c']);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => table.pick('echo')), ['a', 'b', 'c', 'a', 'b', 'c']);
  assert.equal(table.pick('echo', new Set(['a', 'b', 'c'])), undefined);
  assert.notEqual(table.pick('echo', new Set(['a'])), 'a');
  assert.equal(table.pick('nothing'), undefined);
});

test('has answers yes or no without moving the round-robin cursor', () => {
  const table = new ProviderTable();
  table.replace('echo', ['a', 'b', 'c']);
  assert.equal(table.pick('echo'), 'a');
  assert.equal(table.has('echo'), true);
  assert.equal(table.has('echo', new Set(['b'])), true);
  assert.equal(table.has('echo', new Set(['a', 'b', 'c'])), false);
  assert.equal(table.has('nothing'), false);
  assert.deepEqual([1, 2].map(() => table.pick('echo')), ['b', 'c'], 'the questions took no turn');
});

test('a suspect provider is passed over while another is available', () => {
  const table = new ProviderTable();
  table.replace('echo', ['a', 'b']);
  table.markSuspect('a');
  assert.deepEqual([1, 2, 3].map(() => table.pick('echo')), ['b', 'b', 'b']);
  table.markSuspect('b');
  assert.ok(['a', 'b'].includes(table.pick('echo')!), 'all suspect: still picks one');
  table.add('echo', 'c');
  const picks = new Set([1, 2, 3].map(() => table.pick('echo')));
  assert.deepEqual(picks, new Set(['a', 'b', 'c']), 'a change in the list clears suspicion');
});

test('listeners hear real changes only', () => {
  const table = new ProviderTable();
  const heard: string[][] = [];
  const off = table.onChange('echo', (urls) => heard.push([...urls]));
  table.add('echo', 'a');
  table.add('echo', 'a');
  table.replace('echo', ['a']);
  table.add('echo', 'b');
  table.remove('echo', 'x');
  table.remove('echo', 'a');
  off();
  table.add('echo', 'c');
  assert.deepEqual(heard, [['a'], ['a', 'b'], ['b']]);
  assert.deepEqual(table.snapshot(), { echo: ['b', 'c'] });
});

test('a throwing listener does not break the table', () => {
  const table = new ProviderTable();
  table.onChange('echo', () => {
    throw new Error('boom');
  });
  table.add('echo', 'a');
  assert.deepEqual(table.get('echo'), ['a']);
});
