import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repairTornLines } from './repair.ts';

function dirWith(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logs-repair-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

const line = (message: string) => JSON.stringify({ time: '2026-01-01T00:00:00.000Z', level: 'info', service: 's', message });

test('a file that ends in a newline is left alone', async () => {
  const text = `${line('a')}\n${line('b')}\n`;
  const dir = dirWith({ 'logs-2026-01-01.jsonl': text, 'logs-2026-01-02.jsonl': '' });
  assert.deepEqual(await repairTornLines(dir), []);
  assert.equal(fs.readFileSync(path.join(dir, 'logs-2026-01-01.jsonl'), 'utf8'), text);
  assert.equal(fs.existsSync(path.join(dir, 'torn')), false);
});

test('a torn fragment is moved aside and the file ends at the last whole line', async () => {
  const whole = `${line('a')}\n`;
  const fragment = line('cut off').slice(0, 40);
  const dir = dirWith({ 'logs-2026-01-01.1.jsonl': whole + fragment, 'batches.jsonl': '{"id":"x"' });
  assert.deepEqual(await repairTornLines(dir), ['logs-2026-01-01.1.jsonl']);
  assert.equal(fs.readFileSync(path.join(dir, 'logs-2026-01-01.1.jsonl'), 'utf8'), whole);
  assert.equal(fs.readFileSync(path.join(dir, 'torn', `logs-2026-01-01.1.jsonl.${whole.length}`), 'utf8'), fragment);
  assert.equal(fs.readFileSync(path.join(dir, 'batches.jsonl'), 'utf8'), '{"id":"x"', 'only log files are repaired');
});

test('a whole entry missing only its newline keeps its line; a file of one fragment is emptied', async () => {
  const dir = dirWith({ 'logs-2026-01-01.jsonl': `${line('a')}\n${line('b')}`, 'logs-2026-01-02.jsonl': '{"time":"2026' });
  assert.deepEqual((await repairTornLines(dir)).sort(), ['logs-2026-01-01.jsonl', 'logs-2026-01-02.jsonl']);
  assert.equal(fs.readFileSync(path.join(dir, 'logs-2026-01-01.jsonl'), 'utf8'), `${line('a')}\n${line('b')}\n`);
  assert.equal(fs.readFileSync(path.join(dir, 'logs-2026-01-02.jsonl'), 'utf8'), '');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'torn')), ['logs-2026-01-02.jsonl.0']);
});
