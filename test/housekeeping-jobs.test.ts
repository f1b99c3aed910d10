/** shared/housekeeping.ts (#18): a job never overlaps itself, stop() waits for the run in flight, and bad settings stop a service at start. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Housekeeping, HousekeepingStopped, envCron, parseDuration } from '../shared/housekeeping.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetrics } from '../shared/metrics.ts';
import { ROOT, waitFor } from './helpers.ts';

/** A job body that stays running until released, counting how many runs overlap. */
function gate() {
  let release!: () => void;
  let running = 0;
  const state = { runs: 0, maxRunning: 0 };
  let opened = new Promise<void>((resolve) => (release = resolve));
  return {
    state,
    open: () => release(),
    reset: () => (opened = new Promise<void>((resolve) => (release = resolve))),
    run: async () => {
      state.runs++;
      state.maxRunning = Math.max(state.maxRunning, ++running);
      try {
        await opened;
      } finally {
        running--;
      }
      return { removed: { things: 1 } };
    },
  };
}

async function value(metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.getMetricsAsJSON()).find((m) => m.name === name);
  const sample = (metric?.values ?? []).find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return Number(sample?.value ?? 0);
}

test('a scheduled job never overlaps itself: ticks while it runs are skipped and counted, a run asked for waits its turn, stop() waits for the run in flight', async () => {
  const metrics = createMetrics('hk-test');
  const housekeeping = new Housekeeping(createLogger('hk-test', { level: 'error' }), metrics);
  const job = gate();
  housekeeping.add({ name: 'slow', cron: '* * * * * *', run: job.run });

  await waitFor(() => job.state.runs === 1, 'the first scheduled run', 5000);
  await waitFor(async () => (await value(metrics, 'housekeeping_runs_total', { job: 'slow', outcome: 'skipped' })) >= 1, 'a tick skipped while the run goes on', 5000);
  let asked = false;
  const manual = housekeeping.run('slow').then((report) => ((asked = true), report));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked, false, 'the run asked for waits for the one in flight');
  assert.equal(job.state.runs, 1);

  job.open(); // the scheduled run ends; the manual one starts and passes the opened gate
  assert.deepEqual(await manual, { removed: { things: 1 } });
  assert.equal(job.state.maxRunning, 1, 'never two runs at once');
  assert.ok((await value(metrics, 'housekeeping_runs_total', { job: 'slow', outcome: 'ok' })) >= 2);
  assert.ok((await value(metrics, 'housekeeping_removed_total', { job: 'slow', item: 'things' })) >= 2);

  job.reset();
  const runsBefore = job.state.runs;
  // A tick may start the blocked run before this one does; then this one meets the stop instead.
  const blocked = housekeeping.run('slow').catch((err: unknown) => err);
  await waitFor(() => job.state.runs > runsBefore, 'the next run to start', 5000);
  let stopped = false;
  const stopping = housekeeping.stop().then(() => (stopped = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stopped, false, 'stop() waits for the run in flight');
  job.open();
  await blocked;
  await stopping;
  await assert.rejects(housekeeping.run('slow'), HousekeepingStopped);
});

test('durations and cron expressions: parsed or refused', () => {
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('90m'), 90 * 60_000);
  assert.equal(parseDuration('500ms'), 500);
  for (const bad of ['7', '7 days', '-1d', 'd', '']) assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(envCron('X_CRON', '0 * * * *', {}), '0 * * * *');
  assert.equal(envCron('X_CRON', '0 * * * *', { X_CRON: 'off' }), undefined);
  assert.throws(() => envCron('X_CRON', '0 * * * *', { X_CRON: 'hourly' }), /X_CRON must be a cron expression/);
});

test('a bad housekeeping setting stops the service at start with one line', async () => {
  const run = (entry: string, env: Record<string, string>) =>
    new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, entry)], { cwd: ROOT, timeout: 60_000, env: { ...process.env, PORT: '0', REGISTRY_URL: 'http://127.0.0.1:9', ...env } }, (err, _out, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stderr }),
      ),
    );
  const cases: [string, Record<string, string>, RegExp][] = [
    ['cmd/master.ts', { IMAGE_RETENTION_CRON: 'every hour' }, /^imagemaster: could not start: IMAGE_RETENTION_CRON must be a cron expression .*got "every hour"\n$/],
    ['cmd/master.ts', { IMAGE_RETENTION: '7 days' }, /^imagemaster: could not start: IMAGE_RETENTION must be a duration .*got "7 days"\n$/],
    ['cmd/logservice.ts', { LOG_RETENTION_BYTES: 'lots' }, /^log: could not start: LOG_RETENTION_BYTES must be a size .*got "lots"\n$/],
    ['cmd/grades.ts', { SQLITE_BACKUP_CRON: '99 * * * *' }, /^grades: could not start: SQLITE_BACKUP_CRON must be a cron expression/],
  ];
  for (const [entry, env, pattern] of cases) {
    const result = await run(entry, env);
    assert.equal(result.code, 1, `${entry}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
  }
});
