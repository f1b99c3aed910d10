import path from 'node:path';
import { Command, Option } from 'commander';
import { Launcher } from '../platform/launcher.ts';
import { PLATFORM_SERVICES } from '../platform/services.ts';

const ids = PLATFORM_SERVICES.map((s) => s.id);
const program = new Command('platform')
  .description('Start the whole Switchboard platform, each service as its own process')
  .addOption(new Option('--services <list>', 'comma-separated services to run').env('PLATFORM_SERVICES').default(ids.join(',')))
  .addOption(new Option('--workers <n>', 'image worker processes').env('WORKERS').default('1'))
  .addOption(new Option('--worker-concurrency <n>', 'slots per worker (default: cores)').env('WORKER_CONCURRENCY'))
  .addOption(new Option('--data-dir <dir>', 'data directory (one folder per service)').env('DATA_DIR').default('./data'))
  .addOption(new Option('--host <host>', 'address every service binds').env('HOST').default('127.0.0.1'))
  .addOption(new Option('--port <service=port...>', 'a service\'s port (repeatable; 0 = ephemeral), e.g. --port registry=3100').default([]))
  .addOption(new Option('--ephemeral', 'every service but the registry on an ephemeral port').env('PLATFORM_EPHEMERAL'))
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ services: string; workers: string; workerConcurrency?: string; dataDir: string; host: string; port: string[]; ephemeral?: boolean }>();

function fail(message: string): never {
  process.stderr.write(`platform: ${message}\n`);
  process.exit(2);
}

const ports: Record<string, number> = {};
if (opts.ephemeral) for (const id of ids) if (id !== 'registry') ports[id] = 0;
for (const id of ids) {
  const fromEnv = process.env[`${id.toUpperCase()}_PORT`];
  if (fromEnv !== undefined && fromEnv !== '') ports[id] = Number(fromEnv);
}
for (const spec of opts.port) {
  const match = /^([a-z]+)=(\d{1,5})$/.exec(spec);
  if (!match || !ids.includes(match[1])) fail(`--port ${spec}: expected <service>=<port> with a service from ${ids.join(', ')}`);
  ports[match[1]] = Number(match[2]);
}
for (const [id, port] of Object.entries(ports)) if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port for ${id}: ${port}`);
const services = opts.services.split(',').map((s) => s.trim()).filter(Boolean);
for (const id of services) if (!ids.includes(id)) fail(`unknown service "${id}"; choose from ${ids.join(', ')}`);
const workers = Number(opts.workers);
if (!Number.isInteger(workers) || workers < 0) fail(`--workers must be a whole number, got ${opts.workers}`);

const launcher = new Launcher({
  services,
  workers,
  dataDir: path.resolve(opts.dataDir),
  host: opts.host,
  ports,
  workerArgs: opts.workerConcurrency ? ['--concurrency', opts.workerConcurrency] : [],
  print: (line) => process.stdout.write(`${line}\n`),
  readyTimeoutMs: 30_000,
});
process.on('SIGINT', () => launcher.stop('SIGINT'));
process.on('SIGTERM', () => launcher.stop('SIGTERM'));
await launcher.run();
process.stdout.write('[platform] everything has stopped\n');
process.exit(0);
