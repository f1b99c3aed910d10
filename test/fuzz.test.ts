/**
 * CI runs the fuzz on a short budget: every service gets malformed JSON, wrong types, 100 MiB
 * bodies, traversal ids, header abuse, slow clients and a hanging peer, and must refuse each with a
 * clear 4xx, stay up, keep its memory flat and keep answering a control client (see bench/fuzz.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './helpers.ts';

test('npm run fuzz on a short budget finds no violation', { timeout: 240_000 }, async (t) => {
  const seed = process.env.FUZZ_SEED ?? '20251122';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/fuzz.ts'), '--seconds', '15', '--seed', seed, '--control-limit-ms', '3000'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  t.after(() => child.kill('SIGKILL'));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const summary = output.slice(output.indexOf('## Requests sent'));
  for (const line of summary.split('\n').filter((l) => /^(- [A-Za-z ]+: \d+$|## Violations|seed )/.test(l))) t.diagnostic(line);
  assert.equal(code, 0, `the fuzz found violations (seed ${seed}):\n${summary.slice(summary.indexOf('## Violations'))}`);
});
