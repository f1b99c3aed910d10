import path from 'node:path';
import { Command, Option } from 'commander';
import { parseWholeNumber } from '../shared/config.ts';
import { colorEnabled } from '../shared/logger.ts';
import { PLATFORM_SERVICES } from './services.ts';
import type { LaunchOptions } from './launcher.ts';

/** A flag or variable the person can fix: cmd/platform.ts prints it on one line and exits 2. */
export class UsageError extends Error {}

/** The launcher's settings from its flags and the environment (`npm start -- --help` lists them). */
export function launchOptions(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): LaunchOptions {
  const ids = PLATFORM_SERVICES.map((s) => s.id);
  const program = new Command('platform')
    .description('Start the whole Switchboard platform, each service as its own process')
    .addOption(new Option('--services <list>', 'comma-separated services to run').env('PLATFORM_SERVICES').default(ids.join(',')))
    .addOption(new Option('--workers <n>', 'image worker processes').env('WORKERS').default('1'))
    .addOption(new Option('--worker-concurrency <n>', 'slots per worker (default: cores)').env('WORKER_CONCURRENCY'))
    .addOption(new Option('--data-dir <dir>', 'data directory (one folder per service)').env('DATA_DIR').default('./data'))
    .addOption(new Option('--host <host>', 'address every service binds').env('HOST').default('127.0.0.1'))
    .addOption(new Option('--port <service=port...>', "a service's port (repeatable; 0 = ephemeral), e.g. --port registry=3100").default([]))
    .addOption(new Option('--ephemeral', 'every service but the registry on an ephemeral port').env('PLATFORM_EPHEMERAL'))
    .option('--no-color', 'no colour (also NO_COLOR=1; colour is only ever used on a terminal)')
    .addOption(new Option('--registry-replicas <n>', "registry replicas on etcd (ETCD_ENDPOINTS), on ports from the registry's onward").env('REGISTRY_REPLICAS').default('1'))
    .addOption(new Option('--storage-nodes <n>', 'image storage nodes, each on its own port (more than 1 needs BLOB_STORE=s3)').env('STORAGE_NODES').default('1'))
    .addOption(new Option('--masters <n>', 'image masters, each on its own port (more than 1 needs TASK_STORE=postgres)').env('MASTERS').default('1'))
    .showHelpAfterError();
  program.parse(argv);
  const opts = program.opts<{ services: string; workers: string; workerConcurrency?: string; dataDir: string; host: string; port: string[]; ephemeral?: boolean; registryReplicas: string; storageNodes: string; masters: string; color: boolean }>();

  const ports: Record<string, number> = {};
  const port = (id: string, text: string) => {
    const value = parseWholeNumber(text, 0, 65535);
    if (value === undefined) throw new UsageError(`bad port for ${id}: ${text}`);
    ports[id] = value;
  };
  if (opts.ephemeral) for (const id of ids) if (id !== 'registry') ports[id] = 0;
  for (const id of ids) {
    const fromEnv = env[`${id.toUpperCase()}_PORT`];
    if (fromEnv !== undefined && fromEnv !== '') port(id, fromEnv);
  }
  for (const spec of opts.port) {
    const match = /^([a-z]+)=(\d{1,5})$/.exec(spec);
    if (!match || !ids.includes(match[1])) throw new UsageError(`--port ${spec}: expected <service>=<port> with a service from ${ids.join(', ')}`);
    port(match[1], match[2]);
  }
  const services = opts.services.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of services) if (!ids.includes(id)) throw new UsageError(`unknown service "${id}"; choose from ${ids.join(', ')}`);
  const workers = parseWholeNumber(opts.workers);
  if (workers === undefined) throw new UsageError(`--workers must be a whole number, got ${opts.workers}`);
  const registryReplicas = parseWholeNumber(opts.registryReplicas, 1, 16);
  if (registryReplicas === undefined) throw new UsageError(`--registry-replicas must be a whole number from 1 to 16, got ${opts.registryReplicas}`);
  // Replicas share their state through etcd: without it there is nothing for them to share.
  if (registryReplicas > 1 && !env.ETCD_ENDPOINTS) throw new UsageError('--registry-replicas needs ETCD_ENDPOINTS (the etcd the replicas share), e.g. ETCD_ENDPOINTS=http://127.0.0.1:2379');
  const storageNodes = parseWholeNumber(opts.storageNodes, 1, 64);
  if (storageNodes === undefined) throw new UsageError(`--storage-nodes must be a whole number from 1 to 64, got ${opts.storageNodes}`);
  // Nodes on their own disks would each hold different images: only a shared bucket lets any node serve any image.
  if (storageNodes > 1 && env.BLOB_STORE !== 's3') throw new UsageError(`--storage-nodes ${storageNodes} needs BLOB_STORE=s3 (with S3_ENDPOINT, S3_BUCKET and the S3 keys): storage nodes on local disks would each hold different images`);
  const masters = parseWholeNumber(opts.masters, 1, 64);
  if (masters === undefined) throw new UsageError(`--masters must be a whole number from 1 to 64, got ${opts.masters}`);
  if (masters > 1 && env.TASK_STORE !== 'postgres') throw new UsageError(`--masters ${masters} needs TASK_STORE=postgres (with DATABASE_URL): masters on their own SQLite files would each hold different tasks`);

  return {
    services,
    workers,
    registryReplicas,
    storageNodes,
    masters,
    dataDir: path.resolve(opts.dataDir),
    host: opts.host,
    ports,
    workerArgs: opts.workerConcurrency ? ['--concurrency', opts.workerConcurrency] : [],
    print: (line) => process.stdout.write(`${line}\n`),
    readyTimeoutMs: 30_000,
    color: opts.color && colorEnabled(process.stdout, []),
  };
}
