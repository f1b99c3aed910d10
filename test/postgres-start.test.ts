/**
 * A service that keeps its state in PostgreSQL and starts while the database is away waits for it
 * (shared/postgres.ts untilAvailable), says so on its console, and starts by itself once it is back:
 * the master (waits as long as it takes) and grades (for up to 30 s, its start deadline).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { skipUnlessEngine, startPostgres } from '../harness/postgres.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';
import { getJson, startMasterProc, startRegistry, stopAll, waitFor } from './fixtures/pipeline.ts';
import { startGrades } from './fixtures/grades.ts';
import { tempDir } from './helpers.ts';

test('the master and grades started while PostgreSQL is away wait for it, say so, and start once it is back', { skip: skipUnlessEngine('postgres'), timeout: 120_000 }, async (t) => {
  const pg = await startPostgres();
  t.after(() => pg.stop());
  // The database is reached through a relay that refuses every connection until restored.
  const proxy = await startTcpProxy(pg.url);
  t.after(() => proxy.close());
  const through = (url: string) => Object.assign(new URL(url), { host: new URL(proxy.url).host }).toString();
  const [tasksUrl, gradesUrl] = [through(await pg.createDatabase('early_tasks')), through(await pg.createDatabase('early_grades'))];
  const registry = await startRegistry();
  t.after(() => registry.stop());

  proxy.cut();
  const starting = Promise.all([
    startMasterProc(registry.url, { TASK_STORE: 'postgres', DATABASE_URL: tasksUrl, LOG_LEVEL: 'info' }),
    startGrades(registry.url, tempDir('grades-early-'), { GRADES_STORE: 'postgres', DATABASE_URL: gradesUrl, LOG_LEVEL: 'info' }),
  ]);
  // Both have tried (and been refused) more than once: they are waiting, not failed.
  await waitFor(() => proxy.refused() >= 4, 'both services to try the database', 30_000);
  proxy.restore();
  const [master, grades] = await starting;
  t.after(() => stopAll(master, grades));

  assert.match(master.output(), /the task database at postgres:\/\/postgres@127\.0\.0\.1:\d+\/early_tasks is unavailable \(.+\); waiting for it/);
  assert.match(grades.output(), /grades database not reachable yet \(.+\); trying again/);
  assert.equal((await getJson(`${master.url}/tasks`)).status, 200);
  assert.equal((await getJson(`${grades.url}/students`)).status, 200);
});
