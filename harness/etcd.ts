/**
 * A private etcd for tests: the `etcd` binary from Debian's etcd-server, on loopback ports of its own, with
 * its data in a temporary folder, in its own session (stdin /dev/null, output to a file), stopped at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { hasEngine, installCommand } from './engines.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, freePort, tempDir, waitFor } from './processes.ts';

export { skipUnlessEngine } from './engines.ts';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  child: ChildProcess;
  running(): boolean;
  /** SIGKILL (or another signal), then waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the member again on the same ports and data. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** The client URLs, comma-separated, as ETCD_ENDPOINTS takes them. */
  endpoints: string;
  /** The member that is the raft leader now. */
  leader(): Promise<EtcdMember>;
  /** Compacts the history up to the current revision (a watch behind it is cancelled). */
  compact(): Promise<number>;
  stop(): Promise<void>;
}

const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of everyChild) if (child.pid) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
});

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

/** Starts an etcd of `size` members (1 or 3) and waits until every member reports healthy. */
export async function startEtcd(size = 1): Promise<EtcdCluster> {
  if (!hasEngine('etcd')) throw new Error(`etcd is not installed: ${installCommand('etcd')}`);
  const root = tempDir('etcd-');
  const specs = [];
  for (let i = 0; i < size; i++) {
    specs.push({ name: `m${i}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: path.join(root, `m${i}`) });
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',');
  const token = path.basename(root);
  const members: EtcdMember[] = specs.map((spec) => {
    const member = { ...spec } as EtcdMember;
    const launch = (state: 'new' | 'existing') => {
      const log = fs.openSync(path.join(root, `${spec.name}.log`), 'a');
      const child = spawn(
        'etcd',
        [
          '--name', spec.name, '--data-dir', spec.dataDir,
          '--listen-client-urls', spec.clientUrl, '--advertise-client-urls', spec.clientUrl,
          '--listen-peer-urls', spec.peerUrl, '--initial-advertise-peer-urls', spec.peerUrl,
          '--initial-cluster', initialCluster, '--initial-cluster-token', token, '--initial-cluster-state', state,
          '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn',
        ],
        { detached: true, stdio: ['ignore', log, log] },
      );
      fs.closeSync(log);
      everyChild.add(child);
      child.on('exit', () => everyChild.delete(child));
      member.child = child;
    };
    member.running = () => member.child.pid !== undefined && alive(member.child.pid);
    member.kill = async (signal = 'SIGKILL') => {
      if (!member.running()) return;
      process.kill(member.child.pid!, signal);
      await waitFor(() => !member.running(), `etcd ${spec.name} to exit`, 15_000);
    };
    member.restart = async () => {
      launch('existing');
      await waitFor(() => healthy(spec.clientUrl), `etcd ${spec.name} to be healthy again`, 20_000, 50);
    };
    launch('new');
    return member;
  });
  await Promise.all(members.map((m) => waitFor(() => healthy(m.clientUrl), `etcd ${m.name} to be healthy:\n${readLog(root, m.name)}`, 20_000, 50)));
  const endpoints = members.map((m) => m.clientUrl).join(',');
  return {
    members,
    endpoints,
    /** The member that leads now, waiting out an election (one may be under way, or a member slow to answer on a busy machine). */
    async leader() {
      // etcd's own HTTP gateway (no etcdctl, which is another package); uint64 ids come as strings.
      const status = async (member: EtcdMember) => {
        const res = await fetch(`${member.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(5000) });
        const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
        return res.ok && body.leader !== undefined && body.header?.member_id === body.leader;
      };
      return waitFor(async () => {
        for (const member of members) {
          if (member.running() && (await status(member).catch(() => false))) return member;
        }
        return undefined;
      }, 'an etcd leader', 20_000, 100) as Promise<EtcdMember>;
    },
    async compact() {
      const live = members.find((m) => m.running())!;
      const res = await fetch(`${live.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: 'AA==' }) });
      const revision = Number(((await res.json()) as { header: { revision: string } }).header.revision);
      const out = await fetch(`${live.clientUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision, physical: true }) });
      if (!out.ok) throw new Error(`compaction failed: ${await out.text()}`);
      return revision;
    },
    async stop() {
      // One at a time: stopping every member at once stalls the hand-over for seconds.
      for (const member of members) {
        if (!member.running()) continue;
        process.kill(member.child.pid!, 'SIGTERM');
        const gone = await Promise.race([waitFor(() => !member.running(), 'etcd to stop', 10_000).then(() => true, () => false), sleep(10_000).then(() => false)]);
        if (!gone) await member.kill('SIGKILL');
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

function readLog(root: string, name: string): string {
  try {
    return fs.readFileSync(path.join(root, `${name}.log`), 'utf8').slice(-2000);
  } catch {
    return '';
  }
}
