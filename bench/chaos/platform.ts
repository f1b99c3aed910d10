/** The platform the chaos run starts (every service a process on a fixed port), and what "healthy" means for it. */
import fs from 'node:fs';
import path from 'node:path';
import { freePort, tempDir } from '../../harness/processes.ts';
import { startEtcd, type EtcdCluster } from '../../harness/etcd.ts';
import type { InstanceView } from '../../registry/protocol.ts';
import { Managed } from './cluster.ts';
import { getJson } from './poll.ts';
import { clock, HEARTBEAT, REGISTRY_REPLICAS, WATCHED, WATCHERS, say } from './settings.ts';

export interface Platform {
  /** The first registry replica (the only one with the file store): the one restart-registry restarts and whose health is read. */
  registry: Managed;
  /** Every registry replica (one with the file store). */
  registries: Managed[];
  /** A replica SIGSTOPped by the run: not asked for the listing while it sleeps. */
  pausedRegistry?: Managed;
  /** The private etcd under the replicas (with more than one). */
  etcd?: EtcdCluster;
  log: Managed;
  storage: Managed;
  master: Managed;
  grades: Managed;
  portal: Managed;
  frontend: Managed;
  logClient: Managed;
  watchers: Managed;
  workers: Managed[];
  runDir: string;
  /** What the services are given as REGISTRY_URL: every replica, comma-separated. */
  registryUrl: string;
  logDataDir: string;
}

let workerCount = 0;
export function workerProc(registryUrl: string, runDir: string): Managed {
  return new Managed({
    name: `worker-${++workerCount}`,
    entry: 'cmd/worker.ts',
    env: { PORT: '0', REGISTRY_URL: registryUrl, LEASE_TTL_SECONDS: '3', CLAIM_WAIT_MS: '5000' },
    logDir: runDir,
  });
}

export async function startPlatform(): Promise<Platform> {
  const runDir = tempDir('chaos-');
  const dir = (name: string) => {
    fs.mkdirSync(path.join(runDir, name), { recursive: true });
    return path.join(runDir, name);
  };
  // etcd first: its ports are taken before the others are chosen, so none is handed out twice.
  const etcd = REGISTRY_REPLICAS > 1 ? await startEtcd() : undefined;
  const ports = { log: await freePort(), storage: await freePort(), master: await freePort(), grades: await freePort(), portal: await freePort(), frontend: await freePort() };
  const registryPorts = await Promise.all(Array.from({ length: REGISTRY_REPLICAS }, () => freePort()));
  const registryUrl = registryPorts.map((port) => `http://127.0.0.1:${port}`).join(',');
  const registries = registryPorts.map((port, k) => {
    const name = REGISTRY_REPLICAS > 1 ? `registry-${k + 1}` : 'registry';
    const replica: Record<string, string> = etcd ? { REGISTRY_STORE: 'etcd', ETCD_ENDPOINTS: etcd.endpoints, REGISTRY_REPLICA_ID: name } : {};
    return new Managed({ name, entry: 'cmd/registry.ts', env: { PORT: String(port), DATA_DIR: dir(`data-${name}`), ...HEARTBEAT, ...replica }, logDir: runDir });
  });
  const service = (name: string, entry: string, port: number, env: Record<string, string> = {}) =>
    new Managed({ name, entry, env: { PORT: String(port), REGISTRY_URL: registryUrl, DATA_DIR: dir(`data-${name}`), ...env }, logDir: runDir });
  const logDataDir = path.join(runDir, 'data-logservice');
  const p: Platform = {
    registry: registries[0],
    registries,
    etcd,
    log: service('logservice', 'cmd/logservice.ts', ports.log),
    storage: service('storage', 'cmd/storage.ts', ports.storage, { STORAGE_FSYNC: 'false' }),
    // A short task lease, so tasks held by a killed worker come back within seconds rather than 30 s.
    master: service('master', 'cmd/master.ts', ports.master, { LEASE_MS: '5000' }),
    grades: service('grades', 'cmd/grades.ts', ports.grades),
    portal: service('portal', 'cmd/portal.ts', ports.portal),
    frontend: service('frontend', 'cmd/frontend.ts', ports.frontend),
    logClient: new Managed({ name: 'logclient', entry: 'bench/chaos/logClient.ts', env: { PORT: '0', REGISTRY_URL: registryUrl }, logDir: runDir }),
    watchers: new Managed({
      name: 'watchers',
      entry: 'bench/chaos/watchers.ts',
      env: { PORT: '0', REGISTRY_URL: registryUrl, COUNT: String(WATCHERS), REQUIRES: WATCHED.join(','), LOG_LEVEL: 'warn' },
      logDir: runDir,
      ready: /watchers ready (\[.*\])/,
    }),
    workers: [workerProc(registryUrl, runDir), workerProc(registryUrl, runDir)],
    runDir,
    registryUrl,
    logDataDir,
  };
  await Promise.all(registries.map((r) => r.start()));
  await p.log.start();
  await Promise.all([p.storage.start(), p.master.start(), p.grades.start()]);
  await Promise.all([p.portal.start(), p.frontend.start(), ...p.workers.map((w) => w.start())]);
  await Promise.all([p.logClient.start(), p.watchers.start()]);
  return p;
}

/** Every process that should be running now (the SIGSTOPped worker counts). */
export function liveProcs(p: Platform): Managed[] {
  return [...p.registries, p.log, p.storage, p.master, p.grades, p.portal, p.frontend, p.logClient, p.watchers, ...p.workers].filter((m) => m.running);
}

/** Starts a process, trying again (up to 3 times) if it dies before it is ready: a start-up must not end the run. */
export async function startAgain(m: Managed): Promise<Managed> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await m.start();
    } catch (err) {
      if (attempt >= 3 || Date.now() > clock.deadline) throw err;
      say(`${m.name} did not start (${(err as Error).message.split('\n')[0]}); trying again`);
    }
  }
}

/** A replica to read from: the first that runs and is not paused. */
export function readableRegistry(p: Platform): Managed {
  return p.registries.find((r) => r.running && r !== p.pausedRegistry) ?? p.registry;
}

export async function listing(p: Platform, from = readableRegistry(p)): Promise<InstanceView[]> {
  return (await getJson<{ instances: InstanceView[] }>(`${from.url}/services`, 2000)).instances;
}

/** Every running process is up in the registry (the watcher process with all its services), and no up instance is a dead process. */
export function healthy(p: Platform, instances: InstanceView[], stopped?: Managed): boolean {
  const upByPid = new Map<number, number>();
  for (const i of instances) if (i.state === 'up') upByPid.set(Number(i.metadata.pid), (upByPid.get(Number(i.metadata.pid)) ?? 0) + 1);
  const procs = liveProcs(p).filter((m) => !p.registries.includes(m) && m !== stopped);
  for (const m of procs) if ((upByPid.get(m.pid) ?? 0) < (m === p.watchers ? WATCHERS : 1)) return false;
  const livePids = new Set(procs.map((m) => m.pid));
  for (const pid of upByPid.keys()) if (!livePids.has(pid)) return false;
  return true;
}

export function watchedUp(instances: InstanceView[]): Record<string, string[]> {
  const map: Record<string, string[]> = Object.fromEntries(WATCHED.map((n) => [n, []]));
  for (const i of instances) if (i.state === 'up' && map[i.serviceName]) map[i.serviceName].push(i.serviceURL);
  for (const n of WATCHED) map[n].sort();
  return map;
}

/** How many watchers' provider tables differ from the registry's listing of up instances. */
export async function watcherDisagreements(watcherUrls: string[], instances: InstanceView[]): Promise<{ differing: number; examples: string[] }> {
  const expected = watchedUp(instances);
  const tables = await Promise.all(
    watcherUrls.map((url) => getJson<{ name: string; providers: Record<string, string[]> }>(`${url}/debug/providers`, 3000).catch(() => undefined)),
  );
  let differing = 0;
  const examples: string[] = [];
  tables.forEach((table, k) => {
    const bad = !table
      ? ['no answer']
      : WATCHED.filter((n) => JSON.stringify([...(table.providers[n] ?? [])].sort()) !== JSON.stringify(expected[n])).map(
          (n) => `${n}: has ${JSON.stringify(table.providers[n] ?? [])}, registry ${JSON.stringify(expected[n])}`,
        );
    if (bad.length) {
      differing++;
      if (examples.length < 3) examples.push(`${table?.name ?? watcherUrls[k]}: ${bad.join('; ')}`);
    }
  });
  return { differing, examples };
}
