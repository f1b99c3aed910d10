/** The pipeline part's section of docs/benchmarks.md: throughput by setup, and the CPU per image of every process in one table. */
import type { PipelineRun } from './pipeline.ts';

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ratio = (a: number, b: number) => (b > 0 ? `${fmt(a / b, 2)}×` : '–');

/** The rows of the CPU table: a reading's name, and how the table calls it. */
const SERVICES: [string, string][] = [
  ['registry', 'registry'],
  ['masters', 'master(s)'],
  ['storage', 'storage node(s)'],
  ['workers', 'workers'],
  ['postgres', 'PostgreSQL (postmaster, backends, writers)'],
  ['swift-proxy', 'Swift proxy (s3api, tempauth)'],
  ['swift-account', 'Swift account server'],
  ['swift-container', 'Swift container server'],
  ['swift-object', 'Swift object server'],
];

/** NaN (a dash in the table) for a process the setup does not have. */
const perImageMs = (run: PipelineRun, key: string) => (key in run.cpu ? (run.cpu[key] / run.images) * 1000 : NaN);
const totalMs = (run: PipelineRun, except: string[] = []) =>
  Object.keys(run.cpu).filter((k) => !except.includes(k)).reduce((sum, k) => sum + perImageMs(run, k), 0);

/**
 * `runs` in the order embedded, engines with one master and one node, engines with two of each. The body of the
 * section; the date, machine and command come from writeReport.
 */
export function pipelineReport(runs: PipelineRun[], context: { workers: number; inFlight: number; imageBytes: number; distinct: number; loadAtStart: number[]; loadAtEnd: number[] }): string {
  const [embedded, one, two] = runs;
  const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(', ');
  const throughput = runs.map((r) =>
    `| ${r.setup.name} | ${r.setup.masters} | ${r.setup.storageNodes} | ${r.images} | ${fmt(r.seconds, 2)} | ${fmt(r.perSecond, 2)} | ${ratio(r.perSecond, embedded.perSecond)} | ${fmt(r.loadAtStart)} / ${fmt(r.loadAtEnd)} |`);
  const cpuRow = (label: string, value: (r: PipelineRun) => number) =>
    `| ${label} | ${runs.map((r) => fmt(value(r))).join(' | ')} | ${ratio(value(one), value(embedded))} |`;
  const cpuRows = [
    ...SERVICES.filter(([key]) => runs.some((r) => key in r.cpu)).map(([key, label]) => cpuRow(label, (r) => perImageMs(r, key))),
    cpuRow('**every process**', (r) => totalMs(r)),
    cpuRow('every process but the workers', (r) => totalMs(r, ['workers'])),
  ];
  return `
The whole pipeline as processes (a registry, the masters, the storage nodes and ${context.workers} workers at their defaults), on the embedded
defaults (tasks in SQLite, images on the local disk with fsync) and on the shared engines (TASK_STORE=postgres on a private PostgreSQL 15,
BLOB_STORE=s3 on a private OpenStack Swift 2.30 with s3api, both on this machine): the same ${one.images} uploads in every run (${context.distinct} seeded
1024x768 RGB images in turn, ${(context.imageBytes / 2 ** 20).toFixed(2)} MiB each, as bench:images makes them), uploaded straight to the masters in turn (POST /tasks, ${context.inFlight} at a time), timed
from the first upload to the last task done, after warm-up images through every master. One run of each setup, one after the other; the
engines run on the same 2 cores as everything else, so a second master or storage node adds processes, not cores.
Load average (1, 5, 15 min) at the start: ${load(context.loadAtStart)}; at the end: ${load(context.loadAtEnd)} (2 or less: otherwise idle).

| setup | masters | storage nodes | n (images) | seconds | images/s | vs embedded | load at start / end |
| --- | --- | --- | --- | --- | --- | --- | --- |
${throughput.join('\n')}

Two masters and two storage nodes against one of each, on the engines: ${ratio(two.perSecond, one.perSecond)} the throughput.

CPU per image (ms) of every process over the measured run, read from /proc (a process with everything below it, ended children included).
The registry's share is its health checks over the run's time (every 150 ms per instance, the harness's fast settings), so it grows with
the seconds and the instances, not the images.

| process | ${runs.map((r) => r.setup.name).join(' | ')} | S3 + PostgreSQL / local disk + SQLite (one of each) |
| --- | ${runs.map(() => '---').join(' | ')} | --- |
${cpuRows.join('\n')}
`;
}
