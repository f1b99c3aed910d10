import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** BENCH_REPORT sends a trial run's figures elsewhere, so only runs meant for the record rewrite docs/benchmarks.md. */
const FILE = process.env.BENCH_REPORT ? path.resolve(process.env.BENCH_REPORT) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'benchmarks.md');

/** The machine, as a benchmark report names it. */
export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

/**
 * Writes one benchmark's section of docs/benchmarks.md (between its own markers, so the
 * benchmarks never overwrite each other), stamped with the date, the machine and the command.
 * `options.file` writes to another report (with `options.heading` when it is new).
 */
export function writeReport(id: string, title: string, command: string, body: string, options: { file?: string; heading?: string } = {}): void {
  const file = options.file ?? FILE;
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const section = [
    start,
    `## ${title}`,
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${machine()}`,
    `- command: \`${command}\``,
    '',
    body.trim(),
    end,
  ].join('\n');
  const heading = options.heading ?? '# Benchmarks\n\nFigures written by `npm run bench` (each benchmark rewrites its own section).\n';
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : heading;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from >= 0 && to > from) text = text.slice(0, from) + section + text.slice(to + end.length);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  process.stdout.write(`\n${section}\n`);
}

/** p-th percentile (0..100) of a list of numbers. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** CPU seconds and RSS of a process, from /proc (Linux). */
export function procStats(pid: number): { cpuSeconds: number; rssMB: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { cpuSeconds: ticks / 100, rssMB: (rssPages * 4096) / 2 ** 20 };
}
