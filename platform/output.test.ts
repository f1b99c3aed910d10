import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrefixedOutput } from './output.ts';

const ESC = '\x1b[';

test('every prefix is padded to the longest name, [platform] included; without colour no escape is written', () => {
  const lines: string[] = [];
  const output = new PrefixedOutput(['registry', 'imagefrontend'], false, (line) => lines.push(line));
  output.platform('started registry (pid 7)');
  output.line('registry', '2026-12-02T00:00:00.000Z warn [registry] slow');
  output.line('imagefrontend', 'x');
  assert.deepEqual(lines, [
    '[platform     ] started registry (pid 7)',
    '[registry     ] 2026-12-02T00:00:00.000Z warn [registry] slow',
    '[imagefrontend] x',
  ]);
});

test('with colour: a colour per service (workers share one), WARN yellow and ERROR red, info as it is', () => {
  const lines: string[] = [];
  const output = new PrefixedOutput(['registry', 'log', 'imageworker-1', 'imageworker-2'], true, (line) => lines.push(line));
  output.line('registry', '2026-12-02T00:00:00.000Z warn [registry] slow');
  output.line('log', '2026-12-02T00:00:00.000Z error [log] broken');
  output.line('imageworker-1', '2026-12-02T00:00:00.000Z info [imageworker] a');
  output.line('imageworker-2', '2026-12-02T00:00:00.000Z info [imageworker] b');
  const colourOf = (line: string) => /^\x1b\[(\d+)m\[/.exec(line)?.[1];
  assert.ok(lines.every((line) => colourOf(line)), lines.join('\n'));
  assert.notEqual(colourOf(lines[0]), colourOf(lines[1]));
  assert.equal(colourOf(lines[2]), colourOf(lines[3]));
  assert.ok(lines[0].includes(`${ESC}33mwarn${ESC}39m`));
  assert.ok(lines[1].includes(`${ESC}31merror${ESC}39m`));
  assert.ok(lines[2].endsWith('info [imageworker] a'));
  for (const line of lines) assert.ok(![31, 33].includes(Number(colourOf(line))), 'yellow and red are the levels\' own');
});
