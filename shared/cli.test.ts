import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonText, printable, table } from './cli.ts';

test('printable escapes C0, DEL and C1, and leaves other text (backslashes, accents, emoji) alone', () => {
  assert.equal(printable('a\r\nb\tc'), 'a\\r\\nb\\tc');
  assert.equal(printable('\x1b]0;title\x07\x1b[31mred\x00'), '\\x1b]0;title\\x07\\x1b[31mred\\x00');
  assert.equal(printable('\x7f\u0080\u009b\u009f'), '\\x7f\\u0080\\u009b\\u009f');
  assert.equal(printable('C:\\path é ✓ 😀 \u00a0'), 'C:\\path é ✓ 😀 \u00a0');
});

test('jsonText is the same JSON value with DEL and C1 escaped; table cells are escaped before they are aligned', () => {
  const value = { message: 'x\x1b[2J\u009b\x7f\n' };
  const text = jsonText(value, 2);
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  assert.deepEqual(JSON.parse(text), value);
  assert.equal(table(['a', 'b'], [['x\ny', 'z']]), 'a     b\n----  -\nx\\ny  z');
});
