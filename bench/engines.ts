/**
 * Engines benchmark (`npm run bench:engines`, #14), figures to docs/benchmarks.md, in one run:
 *   - claims (section `engines-claims`, bench/engines/claims.ts): claims per second on PostgreSQL with 1, 2 and 4
 *     masters, through the masters' HTTP API and through the store alone;
 *   - pipeline (section `engines-pipeline`, bench/engines/pipeline.ts): images/s from upload to done with two
 *     masters and two storage nodes on PostgreSQL and S3 (Swift), against one of each on the same engines and
 *     against the embedded defaults (SQLite, local disk), with the CPU per image of every service and of the
 *     engines' own processes.
 * Knobs for shorter runs: BENCH_PARTS (default `claims,pipeline`), BENCH_SECONDS (8, per claims run),
 * BENCH_TASKS (40,000 seeded per claims run), BENCH_IMAGES (48 per pipeline run), BENCH_WORKERS (2 worker processes),
 * BENCH_REPORT (another file than docs/benchmarks.md, for trial runs). A default run takes 3-4 minutes on 2 shared cores.
 */
import os from 'node:os';
import { startPostgres } from '../harness/postgres.ts';
import { startSwift } from '../harness/swift.ts';
import { startRegistry } from '../harness/processes.ts';
import { writeReport } from './report.ts';
import { photoRgb } from './images/inputs.ts';
import { claimsSection } from './engines/claims.ts';
import { runPipeline, type PipelineRun, type Setup } from './engines/pipeline.ts';
import { pipelineReport } from './engines/summary.ts';

const PARTS = new Set((process.env.BENCH_PARTS ?? 'claims,pipeline').split(',').map((p) => p.trim()));
const IMAGES = Number(process.env.BENCH_IMAGES ?? 48);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
/** Uploads open at once, as bench:images keeps them (more made the registry miss health checks on a loaded machine). */
const IN_FLIGHT = 8;
/** Distinct images, uploaded in turn: making a 1024x768 photo-like PNG takes a second of this process at load 15, and each upload is a task anyway. */
const DISTINCT = Math.min(IMAGES, 8);
const log = (line: string) => process.stdout.write(`${line}\n`);

const pg = await startPostgres();
try {
  if (PARTS.has('claims')) {
    const registry = await startRegistry({ LOG_LEVEL: 'info' });
    try {
      await claimsSection(pg, registry.url);
    } finally {
      await registry.stop();
    }
  }
  if (PARTS.has('pipeline')) {
    const loadAtStart = os.loadavg();
    log(`generating ${DISTINCT} 1024x768 RGB images (${IMAGES} uploads per run), starting Swift...`);
    const began = performance.now();
    // Swift's rings build in its own processes while this one makes the images.
    const starting = startSwift();
    const distinct = Array.from({ length: DISTINCT }, (_, i) => photoRgb(1024, 768, i + 1));
    const images = Array.from({ length: IMAGES }, (_, i) => distinct[i % DISTINCT]);
    const swift = await starting;
    log(`  ready in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    try {
      const engines = (database: string) => ({ pg, swift, database, bucket: database });
      const setups: Setup[] = [
        { name: 'SQLite + local disk', masters: 1, storageNodes: 1 },
        { name: 'PostgreSQL + S3, 1 + 1', masters: 1, storageNodes: 1, engines: engines('pipeline-one') },
        { name: 'PostgreSQL + S3, 2 + 2', masters: 2, storageNodes: 2, engines: engines('pipeline-two') },
      ];
      const runs: PipelineRun[] = [];
      for (const setup of setups) {
        const setupBegan = performance.now();
        const run = await runPipeline(setup, images, WORKERS, IN_FLIGHT);
        const wall = (performance.now() - setupBegan) / 1000;
        log(`${setup.name}: ${run.perSecond.toFixed(2)} images/s (load ${run.loadAtStart.toFixed(1)} → ${run.loadAtEnd.toFixed(1)}; ${wall.toFixed(0)} s with start and stop)`);
        runs.push(run);
      }
      const body = pipelineReport(runs, { workers: WORKERS, inFlight: IN_FLIGHT, imageBytes: images[0].length, distinct: DISTINCT, loadAtStart, loadAtEnd: os.loadavg() });
      writeReport('engines-pipeline', 'Tasks on PostgreSQL and images on S3: the pipeline', 'npm run bench:engines', body);
    } finally {
      await swift.stop();
    }
  }
} finally {
  await pg.stop();
}
