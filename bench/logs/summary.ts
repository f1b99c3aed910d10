/** The report: the four phases' figures against their targets, and how they were measured. */
import { platformService } from '../../platform/services.ts';
import type { ClientResult } from './client.ts';
import type { IntakeFigures } from './intake.ts';
import type { PressureFigures } from './pressure.ts';
import type { ShippingFigures } from './shipping.ts';

export interface Figures {
  shipping: ShippingFigures;
  intake: IntakeFigures;
  pressure: PressureFigures;
  /** The machine's 1-minute load average at the start and at the end. */
  loadBefore: number;
  loadAfter: number;
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function renderReport({ shipping, intake, pressure: p, loadBefore, loadAfter }: Figures): string {
  const { batchedRuns, perLineRuns, batchedMedian, perLineMedian, disk, peakNormal } = shipping;
  const batched = batchedMedian.result;
  const perLine = perLineMedian.result;
  const cpuBatched = batchedMedian.cpu;
  const cpuPerLine = perLineMedian.cpu;
  const pressureDisk = p.disk;
  const rate = (r: ClientResult) => r.lines / r.seconds;
  const ratio = rate(batched) / rate(perLine);
  const lost = (tag: string, lines: number) => lines - (disk.get(tag)?.distinct.size ?? pressureDisk.get(tag)?.distinct.size ?? 0);
  const dupes = (tag: string) => disk.get(tag)?.duplicates ?? pressureDisk.get(tag)?.duplicates ?? 0;
  const runsLost = [...batchedRuns, ...perLineRuns].reduce((sum, r) => sum + lost(r.result.tag, r.result.lines) + dupes(r.result.tag), 0) + intake.lost + intake.dupes;
  const pressureLost = p.results.reduce((sum, r) => sum + lost(r.tag, r.lines), 0);
  const pressureDupes = p.results.reduce((sum, r) => sum + dupes(r.tag), 0);
  const throttled = p.results.reduce((sum, r) => sum + r.throttled, 0);
  const peakRss = Math.max(peakNormal, intake.peakRssMB, p.peakRssMB);
  const check = (ok: boolean) => (ok ? 'met' : '**missed**');
  const intakeMicros = (intake.cpu / intake.total) * 1e6;

  return `
Lines go from \`logger.info\` in one client process (winston with the \`LogShipper\` as its only
transport, default settings) to the log service, which writes them with winston-daily-rotate-file; a
line counts when the log service has written it to the file and fsynced it (what a 202 promises). Every
line is then checked in the files.
Each batched client first logs 30,000 unmeasured lines (and waits for them on disk), so the figure is
the sustained rate once the JIT has compiled the path; it lets its event loop run every 256 lines.
The log service is started as the launcher starts it (\`${platformService('logservice').nodeOptions?.join(' ') ?? ''}\`, see platform/services.ts).
Client CPU per run (main thread and V8's helper threads): ${batchedRuns.map((r) => r.result.cpuSeconds === undefined ? 'n/a' : fmt(r.result.cpuSeconds, 2)).join(', ')} s.
The machine's 1-minute load average was ${fmt(loadBefore, 1)} at the start and ${fmt(loadAfter, 1)} at the end
(2 cores of a shared virtual machine: figures vary by some 15 % from run to run).

| mode | lines | seconds | lines/s | POSTs | log service CPU s | lost | duplicated |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${[...batchedRuns.map((r) => ['batched (1,000 lines or 200 ms, 2 in flight)', r] as const), ...perLineRuns.map((r) => ['one POST per line (reference pattern)', r] as const)]
  .map(([mode, r]) => `| ${mode}, ${r.result.tag} | ${fmt(r.result.lines)} | ${fmt(r.result.seconds, 2)} | ${r === batchedMedian || r === perLineMedian ? `**${fmt(rate(r.result))}**` : fmt(rate(r.result))} | ${fmt(r.result.posts)} | ${fmt(r.cpu, 2)} | ${lost(r.result.tag, r.result.lines)} | ${dupes(r.result.tag)} |`)
  .join('\n')}

Medians (in bold): batched **${fmt(rate(batched))} lines/s**, one POST per line **${fmt(rate(perLine))} lines/s**.

- batched / one-per-line (medians): **${fmt(ratio, 1)}×**
- log service CPU per 100,000 lines: batched ${fmt((cpuBatched / batched.lines) * 100_000, 2)} s, one per line ${fmt((cpuPerLine / perLine.lines) * 100_000, 2)} s
- log service peak RSS in these two phases: ${fmt(peakNormal, 1)} MB

Intake: ${intake.clients} clients (in the benchmark's process) posting JSON arrays of ${fmt(intake.lines)} lines (each with an
\`X-Log-Batch-Id\`), each sending its next array when the last one was answered 202, that is written and fsynced;
after ${fmt(intake.clients * 30)} unmeasured arrays. A fresh log service with the launcher's options.

- **${fmt(intake.rate)} lines/s** taken (${fmt(intake.total)} lines in ${fmt(intake.seconds, 2)} s); ${fmt(intake.fsyncs)} fsyncs for ${fmt(intake.clients * intake.posts)} arrays
- log service CPU ${fmt(intake.cpu, 2)} s (${fmt((intake.cpu / intake.total) * 100_000, 2)} s per 100,000 lines, **${fmt(intakeMicros, 2)} µs per line**), peak RSS ${fmt(intake.peakRssMB, 1)} MB
- the clients' CPU (the benchmark's own process, on the same 2 cores): ${fmt((intake.clientCpu / intake.total) * 1e6, 2)} µs per line
- lines lost: ${intake.lost}, duplicated: ${intake.dupes}

Backpressure: a log service with \`LOG_QUEUE_LIMIT=${p.queueLimit}\` (256 KiB), ${p.clients} client processes
logging ${fmt(p.lines)} lines each at full speed in batches of 2,000 lines:

- 503 answers with Retry-After: ${fmt(p.busy)} (clients saw ${fmt(throttled)} and waited them out)
- lines lost: ${pressureLost}, duplicated: ${pressureDupes}, dropped by the clients' buffers: ${p.results.reduce((s, r) => s + r.dropped, 0)}
- ${fmt(p.clients * p.lines)} lines in ${fmt(p.seconds, 1)} s; log service peak RSS ${fmt(p.peakRssMB, 1)} MB

| target | figure | |
| --- | --- | --- |
| ≥ 100,000 lines/s batched | ${fmt(rate(batched))} | ${check(rate(batched) >= 100_000)} |
| ≥ 50× one POST per line | ${fmt(ratio, 1)}× | ${check(ratio >= 50)} |
| ≥ 250,000 lines/s taken from 4 clients posting arrays of 1,000 | ${fmt(intake.rate)} | ${check(intake.rate >= 250_000)} |
| log service CPU ≤ 4 µs per line at that intake (250,000 lines/s on one core) | ${fmt(intakeMicros, 2)} µs | ${check(intakeMicros <= 4)} |
| log service RSS ≤ 200 MB throughout | ${fmt(peakRss, 1)} MB | ${check(peakRss <= 200)} |
| zero lines lost (or duplicated) | ${runsLost + pressureLost + pressureDupes} | ${check(runsLost + pressureLost + pressureDupes === 0)} |
| 503 + Retry-After when the queue is full | ${fmt(p.busy)} | ${check(p.busy > 0 && throttled > 0)} |
`;
}
