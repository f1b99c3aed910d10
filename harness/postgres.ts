/**
 * A private PostgreSQL 15 for tests and benchmarks: Debian's binaries (initdb, postgres), on a loopback port of
 * its own, with its data in a temporary folder, in its own session (stdin /dev/null, output to a file), stopped
 * and removed at the end. PostgreSQL refuses to run as root, so under root it runs as the `postgres` user.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { hasEngine, installCommand, PG_BIN, skipUnlessEngine } from './engines.ts';
import { alive, descendants, freePort, tempDir, waitFor } from './processes.ts';

export { skipUnlessEngine } from './engines.ts';

export interface Postgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser on the default database. */
  url: string;
  port: number;
  /** Creates an empty database and gives its URL (one per test keeps tests apart on one server). */
  createDatabase(name: string): Promise<string>;
  /** Runs one SQL statement through psql on `database` (default postgres) and gives its output. */
  sql(statement: string, database?: string): string;
  running(): boolean;
  /** SIGKILL (or another signal) to the server, then waits until it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and data, and waits until it answers. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of everyChild) if (child.pid) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
});

/** The uid and gid to run as: `postgres` under root (PostgreSQL refuses root), else whoever we are. */
function owner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function readLog(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-2000);
  } catch {
    return '';
  }
}

/** Starts a fresh PostgreSQL (initdb, then the server) and waits until it accepts connections. */
export async function startPostgres(): Promise<Postgres> {
  if (!hasEngine('postgres')) throw new Error(`PostgreSQL 15 is not installed: ${installCommand('postgres')}`);
  // A short root: the socket path (ROOT/.s.PGSQL.PORT) must fit in 107 bytes.
  const root = tempDir('pg-');
  const dataDir = path.join(root, 'data');
  const logFile = path.join(root, 'server.log');
  const as = owner();
  fs.chmodSync(root, 0o755);
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.writeFileSync(logFile, '');
  if (as) {
    fs.chownSync(root, as.uid, as.gid);
    fs.chownSync(dataDir, as.uid, as.gid);
    fs.chownSync(logFile, as.uid, as.gid);
  }
  // The server's working folder must be one it can read, so never the caller's (maybe a root-only) folder.
  const run = { cwd: root, uid: as?.uid, gid: as?.gid, env: { ...process.env, HOME: root, LC_ALL: 'C.UTF-8' } };
  // --no-sync: only initdb's own files skip fsync (a throwaway folder); the server fsyncs as in production.
  execFileSync(`${PG_BIN}/initdb`, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-instructions', '--no-sync', '-E', 'UTF8'], { ...run, stdio: 'ignore' });
  const port = await freePort();
  let child!: ChildProcess;
  let reaped = false;
  const launch = () => {
    const log = fs.openSync(logFile, 'a');
    child = spawn(
      `${PG_BIN}/postgres`,
      ['-D', dataDir, '-p', String(port), '-k', root, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'log_min_messages=warning'],
      { ...run, detached: true, stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    everyChild.add(child);
    // 'exit' comes once node has reaped it: until then its pid still answers kill(pid, 0), and a new server on
    // the same data folder takes postmaster.pid for a live server's and refuses to start.
    reaped = false;
    child.once('exit', () => {
      reaped = true;
      everyChild.delete(child);
    });
  };
  const psql = (statement: string, database = 'postgres') =>
    execFileSync(`${PG_BIN}/psql`, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-XAtqc', statement], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const ready = async () => {
    await waitFor(
      () => {
        if (reaped) return true; // exited while starting: said below, at once
        try {
          return psql('SELECT 1').trim() === '1';
        } catch {
          return false;
        }
      },
      'PostgreSQL to accept connections',
      20_000,
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; its log:\n${readLog(logFile)}`);
    });
    if (reaped) throw new Error(`PostgreSQL exited while starting; its log:\n${readLog(logFile)}`);
  };
  const running = () => child.pid !== undefined && alive(child.pid);
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (!running()) return;
    // Every server process: each backend is a session of its own (not in the postmaster's group), and one left
    // behind by a SIGKILLed postmaster holds the shared memory, so the next server refuses to start.
    const pids = signal === 'SIGKILL' ? [child.pid!, ...descendants(child.pid!)] : [child.pid!];
    for (const pid of pids) try { process.kill(pid, signal); } catch { /* gone */ }
    await waitFor(() => pids.every((pid) => !alive(pid)), 'PostgreSQL to exit', 15_000);
    await waitFor(() => reaped, 'PostgreSQL to be reaped', 15_000);
    await waitFor(() => !fs.existsSync(path.join(dataDir, 'postmaster.pid')) || signal === 'SIGKILL', 'PostgreSQL to remove its pid file', 15_000);
  };
  launch();
  await ready();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async createDatabase(name) {
      psql(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    sql: psql,
    running,
    kill,
    async restart() {
      launch();
      await ready();
    },
    async stop() {
      // SIGINT is PostgreSQL's fast shutdown: it ends the sessions and checkpoints.
      if (running()) {
        process.kill(child.pid!, 'SIGINT');
        const stopped = await waitFor(() => !running(), 'PostgreSQL to stop', 10_000).then(() => true, () => false);
        if (!stopped) await kill('SIGKILL');
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * One PostgreSQL for a suite of store tests run against several backends: `setup` starts it (before the suite),
 * `freshLocation` makes an empty database for each test, `teardown` stops it; `server` is the running instance.
 */
export function postgresForSuite(prefix: string) {
  let pg: Postgres | undefined;
  let databases = 0;
  return {
    skip: skipUnlessEngine('postgres'),
    async setup(): Promise<void> {
      pg = await startPostgres();
    },
    async teardown(): Promise<void> {
      await pg?.stop();
    },
    freshLocation: (): Promise<string> => pg!.createDatabase(`${prefix}_${++databases}`),
    get server(): Postgres {
      return pg!;
    },
  };
}
