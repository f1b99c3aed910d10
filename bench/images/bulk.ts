/**
 * bench:images' bulk section (#17): one CLI submitting a folder of 1,000 small PNGs (64x64) with its default
 * concurrency (files uploaded per second), and resuming: after a Ctrl-C halfway, how long the next run takes to
 * reach its first new upload (walk, the manifest instead of hashing, one look at the master's job), and a run
 * over a job that is all uploaded already. Uploads only (--no-wait): the workers' rate is the pipeline's figure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ROOT, startProcess, startRegistry, tempDir, type Proc } from '../../harness/processes.ts';
import { photoRgb } from './inputs.ts';

const FILES = Number(process.env.BENCH_BULK_FILES ?? 1000);

interface Run {
  code: number | string;
  seconds: number;
  /** Seconds from the start to each event, by name (the first of each). */
  firstAt: Map<string, number>;
  uploads: number;
}

/** Runs `images submit --json` as a person would; `stopAfter` uploads sends it SIGINT. */
function submit(args: string[], registryUrl: string, stopAfter?: number): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), '--json', 'images', 'submit', ...args], {
    cwd: ROOT,
    env: { ...process.env, REGISTRY_URL: registryUrl },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const firstAt = new Map<string, number>();
  let uploads = 0;
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const { event } = JSON.parse(line) as { event: string };
      if (!firstAt.has(event)) firstAt.set(event, (performance.now() - started) / 1000);
      if (event === 'uploaded' && ++uploads === stopAfter) child.kill('SIGINT');
    }
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code: code ?? signal ?? -1, seconds: (performance.now() - started) / 1000, firstAt, uploads })));
}

const fmt = (n: number | undefined, digits = 2) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits));

export async function bulkSection(): Promise<string> {
  const quiet = { LOG_LEVEL: 'info' };
  const registry = await startRegistry(quiet);
  const procs: Proc[] = [registry];
  try {
    procs.push(await startProcess('cmd/storage.ts', { env: { ...quiet, REGISTRY_URL: registry.url, DATA_DIR: tempDir('bench-bulk-storage-') } }));
    procs.push(await startProcess('cmd/master.ts', { env: { ...quiet, REGISTRY_URL: registry.url, DATA_DIR: tempDir('bench-bulk-master-') } }));
    const dir = tempDir('bench-bulk-');
    const folder = path.join(dir, 'photos');
    for (let i = 0; i < FILES; i++) {
      const sub = path.join(folder, `set${i % 10}`);
      fs.mkdirSync(sub, { recursive: true });
      fs.writeFileSync(path.join(sub, `p${i}.png`), photoRgb(64, 64, i + 1));
    }
    const bytes = fs.readdirSync(folder, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((n, e) => n + fs.statSync(path.join(e.parentPath, e.name)).size, 0);

    const whole = await submit([folder, '--no-wait', '--state', path.join(dir, 'state-whole')], registry.url);
    const uploadSeconds = whole.seconds - (whole.firstAt.get('uploaded') ?? 0);
    const cut = await submit([folder, '--no-wait', '--job', 'halfway', '--state', path.join(dir, 'state-cut')], registry.url, FILES / 2);
    const resumed = await submit([folder, '--no-wait', '--job', 'halfway', '--state', path.join(dir, 'state-cut')], registry.url);
    const again = await submit([folder, '--no-wait', '--job', 'halfway', '--state', path.join(dir, 'state-cut')], registry.url);
    const rows = [
      `| ${FILES} files (${(bytes / 2 ** 20).toFixed(1)} MiB) by one CLI, default concurrency (4) | ${fmt(whole.seconds, 1)} s in all (walk and hash ${fmt(whole.firstAt.get('job'), 2)} s); ${fmt(whole.uploads / uploadSeconds, 0)} files/s uploading | exit ${whole.code} |`,
      `| resume after a Ctrl-C at ${cut.uploads} uploads: to the first new upload | ${fmt(resumed.firstAt.get('uploaded'), 2)} s (walk and manifest ${fmt(resumed.firstAt.get('job'), 2)} s), then ${resumed.uploads} uploaded, ${fmt(resumed.seconds, 1)} s in all | exits ${cut.code}, ${resumed.code} |`,
      `| the same command over the whole job, all uploaded | ${fmt(again.seconds, 2)} s, ${again.uploads} uploads | exit ${again.code} |`,
    ];
    return `### Bulk submit (images submit on a folder, #17)

Registry, storage and master as processes; no worker (\`--no-wait\`: the uploads alone). Times include the CLI's own start (node with tsx, about a second).

| run | measured | |
| --- | --- | --- |
${rows.join('\n')}
`;
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
  }
}
