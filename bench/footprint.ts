/**
 * bench:footprint (#19): `npm start` on a warm machine (dist/ current): the time until the table, the memory of
 * the whole process tree (npm, the launcher, every service), the warnings printed, and a Ctrl-C's time to nothing
 * left; writes section footprint of docs/benchmarks.md. BENCH_RUNS (default 3) starts; the figures of each are listed.
 */
import os from 'node:os';
import { ensureBuilt } from '../harness/processes.ts';
import { writeReport } from './report.ts';
import { measureStart, measureStop } from './footprint/measure.ts';

const runs = Number(process.env.BENCH_RUNS ?? 3);
// Warm: built once beforehand, so the runs measure a start, not a build.
ensureBuilt('inherit');

const rows: string[] = [];
let last: Awaited<ReturnType<typeof measureStart>> | undefined;
for (let run = 1; run <= runs; run++) {
  const load = os.loadavg()[0].toFixed(2);
  const footprint = await measureStart();
  const stop = await measureStop(footprint);
  rows.push(
    `| ${run} | ${(footprint.tableMs / 1000).toFixed(2)} s | ${footprint.cpuSecondsToTable.toFixed(1)} s | ${footprint.rssMB.toFixed(0)} MB | ${footprint.pssMB.toFixed(0)} MB | ${footprint.processes.length} | ${footprint.warnings.length} | ${(stop.stopMs / 1000).toFixed(2)} s | ${stop.left.length} | ${load} |`,
  );
  process.stdout.write(`run ${run}: table ${footprint.tableMs.toFixed(0)} ms, RSS ${footprint.rssMB.toFixed(0)} MB, stop ${stop.stopMs.toFixed(0)} ms\n`);
  for (const w of footprint.warnings) process.stdout.write(`  warning: ${w}\n`);
  last = footprint;
}

const verdict = (met: boolean) => (met ? 'met' : 'missed');
const perProcess = last!.processes.map((p) => `| ${p.pid} | \`${p.command}\` | ${p.rssMB.toFixed(1)} | ${p.pssMB.toFixed(1)} |`);
writeReport(
  'footprint',
  'Platform footprint: npm start to the table, memory of the whole tree, Ctrl-C',
  `BENCH_RUNS=${runs} npm run bench:footprint`,
  `Each run: \`npm start -- --ephemeral\` in a fresh data directory (dist/ already built: a bundle per service), timed from the spawn to the
"Switchboard is running" table; memory summed over npm and every process below it 3 s after the table (the largest
of 3 samples, 0.5 s apart); then SIGINT to the process group (a terminal's Ctrl-C) and the time until none is left.
RSS counts shared pages once per process; PSS divides them among their sharers. Load: the 1-minute load average
before the run (other work on the machine). CPU used by then: the tree's CPU seconds at the table (the processes
still running; the build check before them took about 0.2 s), the start's cost whatever else runs; with 2 cores and
the stages in series, the table can't come sooner than about half of it.

| run | table after | CPU used by then | RSS (sum) | PSS (sum) | processes | WARN/ERROR lines | Ctrl-C to none left | left | load |
|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Processes of the last run:

| pid | command | RSS MB | PSS MB |
|---|---|---|---|
${perProcess.join('\n')}

Target (#19): RSS ≤ 600 MB, the table ≤ 3 s after \`npm start\` on a warm machine, no warning, Ctrl-C ≤ 2 s.
Against it in the last run: RSS ${verdict(last!.rssMB <= 600)}, PSS ${verdict(last!.pssMB <= 600)}, table ${verdict(last!.tableMs <= 3000)}
(read with the load: on a machine busy with other work the time measures the queue for its cores), warnings
${verdict(last!.warnings.length === 0)}. A node process holds about 40 MB before it loads a module, most of it the node
binary's pages, which every process's RSS counts again: ${last!.processes.length} processes can't sum to 600 MB of RSS
while each loads express, winston, prom-client and zod; their PSS (each shared page counted once) is what the tree holds.`,
);
