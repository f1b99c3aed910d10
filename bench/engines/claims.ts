/**
 * Claims per second on PostgreSQL (TASK_STORE=postgres) with 1, 2 and 4 masters (section `engines-claims`). Each
 * claim is a claim and its completion (a job taken and finished, as graphile-worker counts its 15,600 jobs/s unbatched):
 *   1. through the masters' HTTP API, as workers claim: real master processes on one private PostgreSQL,
 *      16 claimers per master over keep-alive connections, no waiting (waitMs 0);
 *   2. the store alone, in this process (PgTaskStore opened once per "master"), to tell the database's
 *      share from HTTP's.
 * Tasks are seeded by one INSERT … SELECT before each run. BENCH_SECONDS (default 8) per run.
 */
import os from 'node:os';
import { Pool } from 'undici';
import { writeReport, procStats } from '../report.ts';
import type { Postgres } from '../../harness/postgres.ts';
import { startProcess, type Proc } from '../../harness/processes.ts';
import { pgDefaults } from '../../imageservice/master/config.ts';
import { PgTaskStore } from '../../imageservice/master/pgTasks.ts';
import { postgresCpu } from './cpu.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const MASTER_COUNTS = [1, 2, 4];
const CLAIMERS_PER_MASTER = 16;
/** More than one run can claim here (a few thousand a second at the most); a run that empties the table says so. */
const SEEDED = Number(process.env.BENCH_TASKS ?? 40_000);
const log = (line: string) => process.stdout.write(`${line}\n`);

function seed(pg: Postgres, db: string, count: number): void {
  pg.sql('TRUNCATE tasks', db);
  pg.sql(
    `INSERT INTO tasks (state, op, image_key, width, height, bytes, created_at, updated_at)
     SELECT 'pending', 'invert', 'key-' || g, 16, 16, 100, tasks_now_ms(), tasks_now_ms() FROM generate_series(1, ${count}) g`,
    db,
  );
  // Statistics for the bulk load now; autovacuum still runs as it would under a steady queue (its CPU counts).
  pg.sql('ANALYZE tasks', db);
}

/** A run that ran out of tasks measured empty claims at the end: seed more (BENCH_TASKS). */
function assertNotEmptied(pg: Postgres, db: string): void {
  if (pg.sql(`SELECT count(*) FROM tasks WHERE state = 'pending'`, db).trim() === '0') throw new Error(`the run claimed all ${SEEDED} tasks: set BENCH_TASKS higher`);
}

interface Run {
  masters: number;
  claims: number;
  seconds: number;
  perSecond: number;
  /** CPU per claim (µs) of the masters together, and of PostgreSQL (every backend). */
  masterUs?: number;
  postgresUs: number;
}

/** Claimers loop claim → complete until the time is up; gives how many they completed. */
async function claimLoop(claimOnce: (claimer: number) => Promise<boolean>, claimers: number, deadline: number): Promise<number> {
  let done = 0;
  await Promise.all(
    Array.from({ length: claimers }, async (_, c) => {
      while (performance.now() < deadline) if (await claimOnce(c)) done++;
    }),
  );
  return done;
}

async function httpRun(pg: Postgres, db: string, url: string, registryUrl: string, masters: number): Promise<Run> {
  const procs: Proc[] = await Promise.all(
    Array.from({ length: masters }, () =>
      startProcess('cmd/master.ts', { env: { REGISTRY_URL: registryUrl, TASK_STORE: 'postgres', DATABASE_URL: url, LOG_LEVEL: 'info', PG_POOL_SIZE: '16' }, ready: /listening on (http:\/\/\S+)/ }),
    ),
  );
  try {
    seed(pg, db, SEEDED);
    const pools = procs.map((p) => new Pool(p.url, { connections: CLAIMERS_PER_MASTER, pipelining: 1 }));
    const post = async (pool: Pool, path: string, body: unknown) => {
      const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), headersTimeout: 10_000, bodyTimeout: 10_000 });
      const text = await res.body.text();
      return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
    };
    const once = async (c: number) => {
      const pool = pools[c % pools.length];
      const claimed = await post(pool, '/tasks/claim', { workerId: `bench-${c}`, waitMs: 0 });
      if (claimed.status !== 200) return false;
      const done = await post(pool, `/tasks/${claimed.body.id}/complete`, { leaseToken: claimed.body.leaseToken, resultBytes: 1 });
      return done.status === 200;
    };
    // A short warm-up (JIT, connections), then the measured block.
    await claimLoop(once, CLAIMERS_PER_MASTER * masters, performance.now() + 1_500);
    const cpu = () => procs.reduce((sum, p) => sum + procStats(p.child.pid!).cpuSeconds, 0);
    const [masterBefore, pgBefore] = [cpu(), postgresCpu(pg)];
    const started = performance.now();
    const claims = await claimLoop(once, CLAIMERS_PER_MASTER * masters, started + SECONDS * 1000);
    const seconds = (performance.now() - started) / 1000;
    const [masterAfter, pgAfter] = [cpu(), postgresCpu(pg)];
    assertNotEmptied(pg, db);
    await Promise.all(pools.map((p) => p.close()));
    return { masters, claims, seconds, perSecond: claims / seconds, masterUs: ((masterAfter - masterBefore) / claims) * 1e6, postgresUs: ((pgAfter - pgBefore) / claims) * 1e6 };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

async function storeRun(pg: Postgres, db: string, url: string, masters: number): Promise<Run> {
  const stores = await Promise.all(
    Array.from({ length: masters }, () => PgTaskStore.open({ ...pgDefaults, url, poolSize: 8, pollMs: 60_000 }, { leaseMs: 30_000, maxAttempts: 3 }, () => {})),
  );
  try {
    seed(pg, db, SEEDED);
    const once = async (c: number) => {
      const store = stores[c % stores.length];
      const task = await store.claim(`bench-${c}`);
      if (!task) return false;
      return (await store.complete(task.id, task.leaseToken, 1)).outcome === 'completed';
    };
    const claimers = 8 * masters;
    await claimLoop(once, claimers, performance.now() + 1_000);
    const pgBefore = postgresCpu(pg);
    const started = performance.now();
    const claims = await claimLoop(once, claimers, started + SECONDS * 1000);
    const seconds = (performance.now() - started) / 1000;
    assertNotEmptied(pg, db);
    return { masters, claims, seconds, perSecond: claims / seconds, postgresUs: ((postgresCpu(pg) - pgBefore) / claims) * 1e6 };
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

/** Runs the claims at 1, 2 and 4 masters on `pg` (a database of its own) and writes their section. */
export async function claimsSection(pg: Postgres, registryUrl: string): Promise<void> {
  const loadAtStart = os.loadavg();
  const db = 'bench';
  const url = await pg.createDatabase(db);
  // The schema, once, before anything is seeded.
  await (await PgTaskStore.open({ ...pgDefaults, url }, { leaseMs: 30_000, maxAttempts: 3 }, () => {})).close();
  const http: Run[] = [];
  for (const masters of MASTER_COUNTS) {
    const run = await httpRun(pg, db, url, registryUrl, masters);
    log(`HTTP, ${masters} master(s): ${run.perSecond.toFixed(0)} claims/s`);
    http.push(run);
  }
  const store: Run[] = [];
  for (const masters of MASTER_COUNTS) {
    const run = await storeRun(pg, db, url, masters);
    log(`store, ${masters} opening(s): ${run.perSecond.toFixed(0)} claims/s`);
    store.push(run);
  }
  const row = (how: string, r: Run) =>
    `| ${how} | ${r.masters} | ${r.perSecond.toFixed(0)} | ${r.masterUs === undefined ? '–' : r.masterUs.toFixed(0)} | ${r.postgresUs.toFixed(0)} |`;
  const lines = [
    `Claims per second on PostgreSQL 15 (TASK_STORE=postgres): each claim is \`SELECT … FOR UPDATE SKIP LOCKED\` in one UPDATE, then its completion`,
    `with the lease token, both on the database's clock. ${SECONDS} s per run after a warm-up, tasks seeded before each run; PostgreSQL fsyncs`,
    `as in production (synchronous_commit on). Anchor: graphile-worker publishes 15,600 jobs/s unbatched (on its own, faster machine).`,
    `The load (${CLAIMERS_PER_MASTER} claimers per master, the masters and PostgreSQL) shares the machine's cores, so more masters add CPU contention, not cores.`,
    '',
    '| path | masters | claims/s | master CPU per claim (µs) | PostgreSQL CPU per claim (µs) |',
    '| --- | --- | --- | --- | --- |',
    ...http.map((r) => row('HTTP (POST /tasks/claim, /complete)', r)),
    ...store.map((r) => row('store in process (PgTaskStore)', r)),
    '',
    `Load average (1, 5, 15 min) at the start: ${loadAtStart.map((l) => l.toFixed(1)).join(', ')}; at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(', ')}.`,
  ];
  writeReport('engines-claims', 'Tasks on PostgreSQL: claims per second', 'npm run bench:engines', lines.join('\n'));
}
