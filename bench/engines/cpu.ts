/** CPU seconds of whole process trees, from /proc: our services, PostgreSQL's postmaster and backends, Swift's servers. */
import fs from 'node:fs';
import path from 'node:path';
import { descendants } from '../../harness/processes.ts';
import type { Postgres } from '../../harness/postgres.ts';
import type { Swift } from '../../harness/swift.ts';

/** utime + stime, and cutime + cstime (children it has reaped), in seconds; 0 for a process gone meanwhile. */
function ownAndReaped(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return 0;
  }
}

/**
 * The CPU a process and everything below it have used so far. A child that ended is in its parent's reaped
 * time, so a backend that came and went between two readings still counts (reading live children alone loses it).
 */
export function treeCpu(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + ownAndReaped(p), 0);
}

/** The postmaster's pid, from its pid file (the harness's child may be a wrapper under root). */
export function postmasterPid(pg: Postgres): number {
  const dataDir = pg.sql('SHOW data_directory').trim();
  return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0].trim());
}

/** PostgreSQL's CPU so far: the postmaster, its backends and its writers, alive or ended. */
export function postgresCpu(pg: Postgres): number {
  return treeCpu(postmasterPid(pg));
}

/** Each Swift server's CPU so far, by kind (proxy, account, container, object). */
export function swiftCpu(swift: Swift): Record<string, number> {
  const byKind: Record<string, number> = {};
  for (const server of swift.servers) {
    const pid = server.pid();
    byKind[server.kind] = (byKind[server.kind] ?? 0) + (pid === undefined ? 0 : treeCpu(pid));
  }
  return byKind;
}
