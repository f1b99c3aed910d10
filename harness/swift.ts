/**
 * A private OpenStack Swift for tests and benchmarks, as an S3 server (its s3api middleware with tempauth): the
 * proxy, account, container and object servers from Debian, on loopback ports of their own, rings of one replica
 * on one device in a temporary folder, each server in its own session (stdin /dev/null, output to a log file),
 * stopped and removed at the end. See /work/shared/ENGINES.md, "Swift as an S3 server".
 * A benchmark starts one with startSwift(), gives each storage node swift.blobStoreEnv(bucket), and looks into the
 * bucket with s3Client(swift); stop() at the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { hasEngine, installCommand } from './engines.ts';
import { alive, freePort, tempDir, waitFor } from './processes.ts';

export { skipUnlessEngine } from './engines.ts';

/** Swift's own scripts run with Debian's python: the python3 on PATH may be a shim without the swift modules. */
const PYTHON = '/usr/bin/python3';
const CACHE_FILTER_DIR = path.dirname(fileURLToPath(import.meta.url)); // harness/swift_cache.py
const RINGS = ['account', 'container', 'object'] as const;
type ServerKind = (typeof RINGS)[number] | 'proxy';

export interface SwiftServer {
  kind: ServerKind;
  port: number;
  /** The server's pid now (for SIGSTOP and SIGCONT: a stalled server rather than a gone one). */
  pid(): number | undefined;
  running(): boolean;
  /** SIGKILL (or another signal), then waits until the process is gone (its /proc state, not kill -0). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data, and waits for its /healthcheck. */
  restart(): Promise<void>;
}

export interface Swift {
  /** The S3 endpoint (the proxy). */
  endpoint: string;
  /** s3api's `location`: a client must sign for this region. */
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The bucket asked for at start (not created: the storage service creates its own). */
  bucket?: string;
  proxy: SwiftServer;
  servers: SwiftServer[];
  root: string;
  /** The settings that point the storage service at this Swift (BLOB_STORE=s3 and the S3_ variables). */
  blobStoreEnv(bucket?: string): Record<string, string>;
  /** The last lines of every server's log, for a failing test's message. */
  logs(): string;
  stop(): Promise<void>;
}

const everyChild = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of everyChild) if (child.pid) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
});

function run(command: string, args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, output }));
  });
}

/** One ring of one replica on the one device; `rebalance` exits 1 on mere warnings, 2 on errors. */
async function buildRing(swiftDir: string, kind: (typeof RINGS)[number], port: number): Promise<void> {
  const builder = path.join(swiftDir, `${kind}.builder`);
  for (const args of [[builder, 'create', '6', '1', '0'], [builder, 'add', `r1z1-127.0.0.1:${port}/d1`, '100'], [builder, 'rebalance']]) {
    const { code, output } = await run('swift-ring-builder', args, swiftDir);
    if (code > 1) throw new Error(`swift-ring-builder ${args.slice(1).join(' ')} failed (${code}): ${output}`);
  }
}

function serverConfig(kind: ServerKind, port: number, dirs: { swiftDir: string; devices: string }): string {
  const common = [
    '[DEFAULT]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${port}`,
    'workers = 0',
    'mount_check = false',
    // The default `swift` user can't enter a root 0700 folder.
    `user = ${os.userInfo().username}`,
    `swift_dir = ${dirs.swiftDir}`,
    `devices = ${dirs.devices}`,
    `log_name = ${kind}-server`,
    '',
  ];
  if (kind !== 'proxy') {
    return [...common, '[pipeline:main]', `pipeline = healthcheck ${kind}-server`, '', `[app:${kind}-server]`, `use = egg:swift#${kind}`, '',
      '[filter:healthcheck]', 'use = egg:swift#healthcheck', '', `[${kind}-replicator]`, '', `[${kind}-auditor]`, ''].join('\n');
  }
  const egg = ['catch_errors', 'gatekeeper', 'healthcheck', 'proxy-logging', 'listing_formats', 'bulk', 'copy', 'slo', 'dlo', 'versioned_writes', 'symlink'];
  return [
    ...common,
    '[pipeline:main]',
    'pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server',
    '',
    '[app:proxy-server]', 'use = egg:swift#proxy', 'account_autocreate = true', '',
    '[filter:tempauth]', 'use = egg:swift#tempauth', 'user_test_tester = testing .admin', '',
    '[filter:s3api]', 'use = egg:swift#s3api', 'location = us-east-1', '',
    '[filter:cache]', 'paste.filter_factory = swift_cache:filter_factory', '',
    ...egg.flatMap((name) => [`[filter:${name}]`, `use = egg:swift#${name.replace('-', '_')}`, '']),
  ].join('\n');
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-1500);
  } catch {
    return '';
  }
}

/** Starts Swift and waits until every server answers /healthcheck (5-8 s, mostly building rings). */
export async function startSwift(options: { bucket?: string } = {}): Promise<Swift> {
  if (!hasEngine('swift')) throw new Error(`Swift is not installed: ${installCommand('swift')}`);
  const root = tempDir('swift-');
  const swiftDir = path.join(root, 'etc');
  const devices = path.join(root, 'devices');
  const logDir = path.join(root, 'logs');
  for (const dir of [swiftDir, path.join(devices, 'd1'), logDir]) fs.mkdirSync(dir, { recursive: true });
  const ports = { proxy: await freePort(), account: await freePort(), container: await freePort(), object: await freePort() };
  await Promise.all(RINGS.map((kind) => buildRing(swiftDir, kind, ports[kind])));

  const servers = (['account', 'container', 'object', 'proxy'] as const).map((kind): SwiftServer & { child?: ChildProcess } => {
    const conf = path.join(swiftDir, `${kind}-server.conf`);
    const logFile = path.join(logDir, `${kind}.log`);
    fs.writeFileSync(conf, serverConfig(kind, ports[kind], { swiftDir, devices }));
    const server: SwiftServer & { child?: ChildProcess } = {
      kind,
      port: ports[kind],
      pid: () => server.child?.pid,
      running: () => server.child?.pid !== undefined && alive(server.child.pid),
      async kill(signal = 'SIGKILL') {
        if (!server.running()) return;
        process.kill(server.child!.pid!, signal);
        await waitFor(() => !server.running(), `swift ${kind} server to exit`, 15_000);
      },
      async restart() {
        launch();
        await waitFor(() => healthy(ports[kind]), `swift ${kind} server to answer again:\n${tail(logFile)}`, 30_000, 50);
      },
    };
    const launch = () => {
      const log = fs.openSync(logFile, 'a');
      // -v: there is no /dev/log here, so the servers log to their output (the log file).
      const child = spawn(PYTHON, [`/usr/bin/swift-${kind}-server`, conf, '-v'], {
        cwd: root,
        detached: true,
        stdio: ['ignore', log, log],
        env: { ...process.env, PYTHONPATH: CACHE_FILTER_DIR, PYTHONDONTWRITEBYTECODE: '1' },
      });
      fs.closeSync(log);
      everyChild.add(child);
      child.on('exit', () => everyChild.delete(child));
      server.child = child;
    };
    launch();
    return server;
  });
  const logs = () => servers.map((s) => `--- ${s.kind}\n${tail(path.join(logDir, `${s.kind}.log`))}`).join('\n');
  try {
    await Promise.all(servers.map((s) => waitFor(() => healthy(s.port), `swift ${s.kind} server to answer /healthcheck`, 60_000, 50)));
  } catch (err) {
    await Promise.all(servers.map((s) => s.kill()));
    const message = `${(err as Error).message}\n${logs()}`;
    fs.rmSync(root, { recursive: true, force: true });
    throw new Error(message);
  }
  const swift: Swift = {
    endpoint: `http://127.0.0.1:${ports.proxy}`,
    region: 'us-east-1',
    // tempauth's account:user and key, as s3api takes them.
    accessKeyId: 'test:tester',
    secretAccessKey: 'testing',
    bucket: options.bucket,
    proxy: servers.find((s) => s.kind === 'proxy')!,
    servers,
    root,
    blobStoreEnv: (bucket = options.bucket ?? 'images') => blobStoreEnv(swift, bucket),
    logs,
    async stop() {
      // The proxy first, so nothing is half-way through the backends when they go.
      for (const server of [...servers].reverse()) {
        if (!server.running()) continue;
        await server.kill('SIGTERM').catch(() => server.kill('SIGKILL'));
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  return swift;
}

/** The storage service's environment for a bucket on an S3 server (for tests and bench/engines.ts). */
export function blobStoreEnv(s3: Pick<Swift, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>, bucket: string): Record<string, string> {
  return {
    BLOB_STORE: 's3',
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: bucket,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

/** An S3 client of the server, as the storage service configures its own: for a test's or a benchmark's own look into a bucket. */
export function s3Client(s3: Pick<Swift, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 2000, requestTimeout: 10_000 },
  });
}
