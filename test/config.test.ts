/** Every service's settings come from its config.ts: a bad one stops it at start with one line, never a stack trace. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { ROOT } from './helpers.ts';
import { PLATFORM_SERVICES } from '../platform/services.ts';
import { LOG_SERVICE_PORT } from '../logservice/config.ts';
import { fromEnv as masterFromEnv, masterDefaults, MASTER_DEFAULT_PORT } from '../imageservice/master/config.ts';
import { fromEnv as workerFromEnv } from '../imageservice/worker/config.ts';
import { storeFromEnv as gradesStoreFromEnv } from '../grades/config.ts';

function run(entry: string, env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, entry)], { cwd: ROOT, timeout: 60_000, env: { ...process.env, ...env } }, (err, _stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, stderr }),
    ),
  );
}

test('a service refuses a bad variable at start: exit 1, one line naming it, no stack trace', async () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['cmd/master.ts', { LEASE_MS: 'abc' }, /^imagemaster: could not start: LEASE_MS must be a non-negative integer, got "abc"\n$/],
    ['cmd/grades.ts', { PORT: '-1' }, /^grades: could not start: PORT must be a non-negative integer, got "-1"\n$/],
    ['cmd/worker.ts', { IMAGE_CODEC: 'gif' }, /^imageworker: could not start: IMAGE_CODEC must be one of sharp, pngjs, got "gif"\n$/],
    ['cmd/grades.ts', { GRADES_STORE: 'postgres', DATABASE_URL: 'postgres://grades@127.0.0.1:1/grades', PG_POOL_SIZE: 'many' }, /^grades: could not start: PG_POOL_SIZE must be a non-negative integer, got "many"\n$/],
    ['cmd/master.ts', { TASK_STORE: 'postgres', DATABASE_URL: 'mysql://root:secret@127.0.0.1/tasks' }, /^imagemaster: could not start: TASK_STORE=postgres needs DATABASE_URL=postgres:\/\/user:password@host:port\/database, got "mysql:\/\/root:\*\*\*@127\.0\.0\.1\/tasks"\n$/],
    ['cmd/worker.ts', { WORKER_NICE: '20' }, /^imageworker: could not start: WORKER_NICE must be a whole number from 0 to 19, got "20"\n$/],
  ];
  for (const [entry, env, pattern] of cases) {
    const result = await run(entry, env);
    assert.equal(result.code, 1, `${entry}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr, /^\s+at /m);
  }
});

test('fromEnv reads a service\'s variables over its defaults, and the launcher takes its default ports from the same place', () => {
  const master = masterFromEnv({ LEASE_MS: '5000', PORT: '0' });
  assert.equal(master.leaseMs, 5000);
  assert.equal(master.maxAttempts, masterDefaults.maxAttempts);
  assert.equal(master.config?.port, 0);
  assert.equal(masterFromEnv({}).config?.port, MASTER_DEFAULT_PORT);
  assert.deepEqual({ ...workerFromEnv({ CONCURRENCY: '3', IMAGE_CODEC: 'pngjs', WORKER_NICE: '0' }), config: undefined }, { ...workerFromEnv({}), concurrency: 3, codec: 'pngjs', nice: 0, config: undefined });
  assert.equal(workerFromEnv({}).nice, 10);
  const pg = { GRADES_STORE: 'postgres', DATABASE_URL: 'postgres://grades@127.0.0.1:5432/grades' };
  const bounds = { PG_POOL_SIZE: '3', PG_QUERY_TIMEOUT_MS: '1500', PG_CONNECT_TIMEOUT_MS: '700' };
  assert.deepEqual(gradesStoreFromEnv({ ...pg, ...bounds }), { kind: 'postgres', url: pg.DATABASE_URL, poolSize: 3, queryTimeoutMs: 1500, connectTimeoutMs: 700 });
  assert.deepEqual(gradesStoreFromEnv(pg), { kind: 'postgres', url: pg.DATABASE_URL, poolSize: 10, queryTimeoutMs: 5000, connectTimeoutMs: 2000 });
  // The master reads the same variables the same way (shared/postgres.ts), over its own defaults.
  const tasks = { TASK_STORE: 'postgres', DATABASE_URL: 'postgresql://master@127.0.0.1:5432/tasks' };
  assert.deepEqual(masterFromEnv({ ...tasks, ...bounds }).store, { kind: 'postgres', pg: { url: tasks.DATABASE_URL, poolSize: 3, queryTimeoutMs: 1500, connectTimeoutMs: 700, pollMs: 1000 } });
  assert.deepEqual(masterFromEnv(tasks).store?.pg, { url: tasks.DATABASE_URL, poolSize: 10, queryTimeoutMs: 10_000, connectTimeoutMs: 5000, pollMs: 1000 });
  // Both clamp: a pool of at least one connection, and no bound below 100 ms (0 would mean "none" to node-postgres).
  const tiny = { PG_POOL_SIZE: '0', PG_QUERY_TIMEOUT_MS: '0', PG_CONNECT_TIMEOUT_MS: '5' };
  assert.deepEqual(gradesStoreFromEnv({ ...pg, ...tiny }), { kind: 'postgres', url: pg.DATABASE_URL, poolSize: 1, queryTimeoutMs: 100, connectTimeoutMs: 100 });
  assert.deepEqual(masterFromEnv({ ...tasks, ...tiny }).store?.pg, { url: tasks.DATABASE_URL, poolSize: 1, queryTimeoutMs: 100, connectTimeoutMs: 100, pollMs: 1000 });
  assert.throws(() => gradesStoreFromEnv({ GRADES_STORE: 'postgres' }), /^Error: GRADES_STORE=postgres needs DATABASE_URL=postgres:\/\/user:password@host:port\/database$/);
  const port = (id: string) => PLATFORM_SERVICES.find((s) => s.id === id)?.defaultPort;
  assert.equal(port('master'), MASTER_DEFAULT_PORT);
  assert.equal(port('logservice'), LOG_SERVICE_PORT);
});

test("a service's npm script runs it with the node options the launcher gives it (platform/services.ts)", () => {
  const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  for (const service of PLATFORM_SERVICES) {
    assert.equal(scripts[service.id], ['tsx', ...(service.nodeOptions ?? []), service.entry].join(' '), `npm run ${service.id}`);
  }
  assert.deepEqual(PLATFORM_SERVICES.find((s) => s.id === 'logservice')?.nodeOptions, ['--max-semi-space-size=8']);
  // The image services set their heap's growth on themselves (imageservice/heapGrowth.ts): on the command line,
  // a V8 flag makes node compile its own modules at every start.
  for (const id of ['storage', 'master', 'worker', 'frontend']) assert.equal(PLATFORM_SERVICES.find((s) => s.id === id)?.nodeOptions, undefined, id);
});
