/**
 * What a 202 from POST /log promises: the batch's lines are written and fsynced. A log service
 * SIGKILLed mid-flood keeps every acknowledged line (once), a retry of an acknowledged batch after
 * the restart is answered as a duplicate, and a file whose last line was torn is repaired at start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { getJson, tempDir } from './helpers.ts';
import { countBy, postLog, startLogService, storedLines } from './fixtures/logs.ts';
import type { LogEntry } from '../logservice/protocol.ts';

const BATCH_LINES = 1000;
const KILL_AFTER = 60;
const IN_FLIGHT = 4;

const batchBody = (b: number) =>
  JSON.stringify(Array.from({ length: BATCH_LINES }, (_, i) => ({ service: 'durable', message: `batch ${b} line ${i}`, key: `${b}/${i}` })));

/** The lines in the files, and how many could not be read as JSON (a torn or glued line). */
function readFiles(dataDir: string): { entries: LogEntry[]; unreadable: string[] } {
  const entries: LogEntry[] = [];
  const unreadable: string[] = [];
  for (const name of fs.readdirSync(dataDir).filter((n) => /^logs-.*\.jsonl$/.test(n))) {
    for (const line of fs.readFileSync(path.join(dataDir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        entries.push(JSON.parse(line) as LogEntry);
      } catch {
        unreadable.push(line.slice(0, 200));
      }
    }
  }
  return { entries, unreadable };
}

/** A flood of batches, SIGKILL at the KILL_AFTER-th 202, a restart on the same files, and the checks. */
async function floodKillRestart(env: Record<string, string>): Promise<void> {
  const dataDir = tempDir('logs-durable-');
  const first = await startLogService(env, dataDir);
  const acknowledged: number[] = [];
  const unanswered: number[] = [];
  let next = 0;
  let killed = false;
  // 4 clients in a loop; the 300th 202 SIGKILLs the log service on the spot, with the others in flight.
  const client = async () => {
    while (!killed) {
      const b = next++;
      let status = 0;
      try {
        status = (await postLog(first.url, batchBody(b), 'application/json', { 'x-log-batch-id': `durable-${b}` })).status;
      } catch {
        // the connection died with the process
      }
      if (status === 202) {
        acknowledged.push(b);
        if (acknowledged.length >= KILL_AFTER && !killed) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      } else {
        unanswered.push(b);
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, client));
  assert.equal(await first.exited, 'SIGKILL');

  const afterCrash = readFiles(dataDir);
  const counts = countBy(afterCrash.entries.filter((e) => e.service === 'durable'), (e) => e.key as string);
  const missing: string[] = [];
  for (const b of acknowledged) {
    for (let i = 0; i < BATCH_LINES; i++) if (!counts.has(`${b}/${i}`)) missing.push(`${b}/${i}`);
  }
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${acknowledged.length * BATCH_LINES} acknowledged lines are missing after the SIGKILL`);

  // Restart on the same files: retry what was not answered, and the last acknowledged batches as if their answers were lost.
  const second = await startLogService(env, dataDir);
  try {
    for (const b of unanswered) {
      const retried = await postLog(second.url, batchBody(b), 'application/json', { 'x-log-batch-id': `durable-${b}` });
      assert.equal(retried.status, 202, JSON.stringify(retried.body));
    }
    for (const b of acknowledged.slice(-IN_FLIGHT)) {
      const again = await postLog(second.url, batchBody(b), 'application/json', { 'x-log-batch-id': `durable-${b}` });
      assert.equal(again.status, 202);
      assert.equal(again.body.duplicate, true, `batch ${b} was acknowledged before the crash: its retry is a duplicate`);
    }
  } finally {
    assert.equal(await second.stop(), 0, second.output());
  }
  const restored = readFiles(dataDir);
  assert.deepEqual(restored.unreadable, [], 'every line in the files reads back as JSON');
  const final = countBy(restored.entries.filter((e) => e.service === 'durable'), (e) => e.key as string);
  for (const b of acknowledged) {
    for (let i = 0; i < BATCH_LINES; i++) assert.equal(final.get(`${b}/${i}`), 1, `acknowledged line ${b}/${i} is on disk exactly once`);
  }
  for (const b of unanswered) assert.ok(final.has(`${b}/0`), `unanswered batch ${b} is stored once retried`);
  fs.rmSync(dataDir, { recursive: true, force: true });
}

test('SIGKILL mid-flood: every acknowledged line is on disk exactly once, and a retry of an acknowledged batch is a duplicate', async () => {
  await floodKillRestart({});
});

test('the same while the files rotate every few batches (a batch is durable in the file it went to)', async () => {
  await floodKillRestart({ LOG_MAX_FILE_SIZE: '300k' });
});

test('a torn last line is set aside at start: the lines appended after it read back from GET /logs', async () => {
  const dataDir = tempDir('logs-torn-');
  const first = await startLogService({}, dataDir);
  assert.equal((await postLog(first.url, JSON.stringify({ service: 'torn', message: 'before the crash' }), 'application/json')).status, 202);
  assert.equal(await first.stop(), 0);
  const [file] = fs.readdirSync(dataDir).filter((n) => /^logs-.*\.jsonl$/.test(n));
  assert.ok(file, 'a log file was written');
  // What a process killed in the middle of a write leaves behind: a line without its end.
  const fragment = '{"time":"2026-01-01T00:00:00.000Z","level":"info","service":"torn","message":"cut off in the mid';
  fs.appendFileSync(path.join(dataDir, file), fragment);

  const second = await startLogService({}, dataDir);
  for (const message of ['first after the restart', 'second after the restart']) {
    assert.equal((await postLog(second.url, JSON.stringify({ service: 'torn', message }), 'application/json')).status, 202);
  }
  assert.equal(await second.stop(), 0);

  // A third start has nothing in memory: the answer comes from the files.
  const third = await startLogService({}, dataDir);
  try {
    const res = await getJson(`${third.url}/logs?service=torn`);
    assert.equal(res.status, 200);
    assert.deepEqual(
      (res.body.entries as LogEntry[]).map((e) => e.message),
      ['before the crash', 'first after the restart', 'second after the restart'],
    );
  } finally {
    await third.stop();
  }
  assert.deepEqual(storedLines(dataDir).map((e) => e.message), ['before the crash', 'first after the restart', 'second after the restart']);
  const setAside = fs.readdirSync(path.join(dataDir, 'torn')).map((n) => fs.readFileSync(path.join(dataDir, 'torn', n), 'utf8'));
  assert.deepEqual(setAside, [fragment], 'the fragment is kept aside under DATA_DIR/torn');
  fs.rmSync(dataDir, { recursive: true, force: true });
});
