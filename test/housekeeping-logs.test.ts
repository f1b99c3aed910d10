/** Log retention by total size (#18): the oldest files go first, the newest lines stay, and queries agree with the files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { getJson, waitFor } from './helpers.ts';
import { postLog, startLogService, storedLines } from './fixtures/logs.ts';

const LIMIT = 16 * 1024;

function logBytes(dir: string): number {
  return fs
    .readdirSync(dir)
    .filter((name) => /^logs-.*\.jsonl$/.test(name))
    .reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
}

/** Posts `batches` batches of 20 lines of about 100 bytes each, every one answered 202; returns the messages in order. */
async function postBatches(url: string, service: string, batches: number, time?: (n: number) => string): Promise<string[]> {
  const posted: string[] = [];
  for (let batch = 0; batch < batches; batch++) {
    const entries = Array.from({ length: 20 }, (_, i) => {
      const n = batch * 20 + i;
      const message = `${service} line ${String(n).padStart(4, '0')} ${'x'.repeat(80)}`;
      posted.push(message);
      return { service, level: 'info', message, ...(time ? { time: time(n) } : {}) };
    });
    const res = await postLog(url, JSON.stringify(entries), 'application/json');
    assert.equal(res.status, 202, JSON.stringify(res.body));
  }
  return posted;
}

test('log retention by size: past LOG_RETENTION_BYTES the oldest files are removed, the newest kept, and GET /logs returns only what the files still hold', async (t) => {
  const log = await startLogService({ LOG_MAX_FILE_SIZE: '4k', LOG_RETENTION_BYTES: '16k', LOG_RETENTION_CRON: '* * * * * *' });
  t.after(() => log.stop());

  const posted = await postBatches(log.url, 'hk-logs', 30, (n) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString());
  assert.ok(posted.join('').length > 3 * LIMIT, 'far more than the limit was written');

  await waitFor(() => logBytes(log.dataDir) <= LIMIT, `the log files to fit in ${LIMIT} bytes`, 30_000);

  const kept = storedLines(log.dataDir).map((e) => e.message);
  assert.ok(kept.length > 0 && kept.length < posted.length, `some but not all lines kept (${kept.length} of ${posted.length})`);
  assert.deepEqual(kept, posted.slice(-kept.length), 'what is kept is the newest lines, in order: the oldest files went first');

  // The recent-entries index holds every line posted (600 < 5,000): the removed ones must have left it too.
  const { body } = await getJson(`${log.url}/logs?service=hk-logs&limit=5000`);
  const answered = body.entries.map((e: { message: string }) => e.message);
  assert.deepEqual(answered, kept, 'a query returns exactly the lines still in the files');

  const metrics = await (await fetch(`${log.url}/metrics`)).text();
  const removed = /housekeeping_removed_total\{[^}]*job="log-retention"[^}]*item="files"[^}]*\} (\d+)/.exec(metrics);
  assert.ok(removed && Number(removed[1]) >= 1, metrics);
  assert.match(metrics, /housekeeping_runs_total\{[^}]*job="log-retention"[^}]*outcome="ok"[^}]*\} [1-9]/);
  assert.match(log.output(), /housekeeping log-retention: removed \d+ files/);
});

test('log retention by age (LOG_RETENTION): a file the rotator removes is logged and counted as a log-age run, and its lines leave the index', async (t) => {
  const log = await startLogService({ LOG_MAX_FILE_SIZE: '4k', LOG_RETENTION: '2', LOG_RETENTION_BYTES: '0' });
  t.after(() => log.stop());

  const posted = await postBatches(log.url, 'hk-age', 20);

  const metricsText = () => fetch(`${log.url}/metrics`).then((r) => r.text());
  const removedFiles = (text: string) => Number(/housekeeping_removed_total\{[^}]*job="log-age"[^}]*item="files"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  await waitFor(async () => removedFiles(await metricsText()) >= 1, 'a log-age removal counted in /metrics', 30_000);
  assert.match(log.output(), /housekeeping log-age: removed \d+ files?; logs-[^ ]+\.jsonl.* \(past LOG_RETENTION 2\); \d+ entries left the index/);

  const kept = storedLines(log.dataDir).map((e) => e.message);
  assert.ok(kept.length > 0 && kept.length < posted.length, `some but not all lines kept (${kept.length} of ${posted.length})`);
  assert.deepEqual(kept, posted.slice(-kept.length), 'the newest lines are kept, in order');
  await waitFor(async () => {
    const { body } = await getJson(`${log.url}/logs?service=hk-age&limit=5000`);
    return body.entries.length === kept.length;
  }, 'a query to return only what the files hold', 10_000);
  const { body } = await getJson(`${log.url}/logs?service=hk-age&limit=5000`);
  assert.deepEqual(body.entries.map((e: { message: string }) => e.message), kept);
});
