import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flagsToSet } from './v8Flags.ts';

test('a V8 flag is set unless node was given it on its command line or in NODE_OPTIONS', () => {
  const flag = '--heap-growing-percent=300';
  assert.deepEqual(flagsToSet([flag], [], ''), [flag]);
  assert.deepEqual(flagsToSet([flag], ['--max-semi-space-size=8'], '--enable-source-maps'), [flag]);
  // Given (with any value, and in either spelling): left as given.
  assert.deepEqual(flagsToSet([flag], ['--heap-growing-percent=0'], ''), []);
  assert.deepEqual(flagsToSet([flag], [], '--enable-source-maps  --heap_growing_percent=50'), []);
  // A value that merely mentions the name is no flag.
  assert.deepEqual(flagsToSet([flag], ['--title', 'heap-growing-percent'], ''), [flag]);
});
