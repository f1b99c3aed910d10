/**
 * The image pipeline benchmark (npm run bench:images): the codecs and their encoder settings on one
 * thread, every op with both codecs, the in-process pool rate, then the whole pipeline as processes
 * (registry, storage, master, one worker, frontend; uploads through the frontend): throughput, CPU
 * seconds per image by service, idle upload-to-done latency, sequential uploads accepted per second;
 * side by side, what the defaults buy and the floor (the same hops in bare node:http, bench/images/bareHop.ts).
 * Seeded inputs: the issue's photo-like RGB images and the RGBA ones used before. Figures go to
 * docs/benchmarks.md.
 */
import os from 'node:os';
import { TransformPool } from '../imageservice/worker/pool.ts';
import { transformPng } from '../imageservice/worker/transform.ts';
import { createCodec } from '../imageservice/codecs.ts';
import { CODECS, type CodecName, type EncoderSettings } from '../imageservice/codec.ts';
import { OPS } from '../imageservice/ops.ts';
import { IMAGE_HEAP_GROWTH } from '../imageservice/heapGrowth.ts';
import { writeReport, percentile } from './report.ts';
import { photoRgb, photoRgba } from './images/inputs.ts';
import { bulkSection } from './images/bulk.ts';
import { retried503 } from './images/drive.ts';
import { BARE, IDLE_SAMPLES, LARGE_UPLOADS, SEQUENTIAL_UPLOADS, UPLOADS_IN_FLIGHT, SERVICE_NAMES, V8_HEAP_GROWTH, pipeline, type Variant } from './images/pipeline.ts';

const SMALL = { width: 1024, height: 768 };
const LARGE = { width: 4000, height: 3000 };
const PIPELINE_IMAGES = Number(process.env.BENCH_IMAGES ?? 48);
/** Rounds of the side-by-side runs (defaults, the worker at nice 0, the image services with their heap growth left to V8, the bare hops). */
const SIDE_BY_SIDE_ROUNDS = Number(process.env.BENCH_SIDE_ROUNDS ?? 2);

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(2);
const mp = ({ width, height }: { width: number; height: number }) => (width * height) / 1e6;
const check = (ok: boolean) => (ok ? 'met' : '**missed**');

/** CPU ms of this process (every thread: libvips and zlib work on the thread pool) per transform, and the output size. */
async function measure(codec: CodecName, encoder: EncoderSettings | undefined, png: Buffer, op: (typeof OPS)[number] = 'swap-rg', runs = 5) {
  const c = createCodec(codec, encoder);
  await transformPng(png, op, c);
  const cpu = process.cpuUsage();
  let bytes = 0;
  let decodeMs = 0;
  let encodeMs = 0;
  for (let i = 0; i < runs; i++) {
    const r = await transformPng(png, op, c);
    bytes = r.png.length;
    decodeMs += r.decodeMs;
    encodeMs += r.encodeMs;
  }
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000 / runs, decodeMs: decodeMs / runs, encodeMs: encodeMs / runs, bytes, settings: c.encoder };
}

async function poolRate(pool: TransformPool, images: Buffer[], size: { width: number; height: number }) {
  const started = performance.now();
  await Promise.all(images.map((png) => pool.run(Buffer.from(png), 'swap-rg').then((r) => { if (!r.ok) throw new Error(r.error); })));
  const seconds = (performance.now() - started) / 1000;
  return { imagesPerSecond: images.length / seconds, mpixPerSecond: (images.length * mp(size)) / seconds };
}

const ENCODER_ROWS: [string, CodecName, EncoderSettings | undefined][] = [
  ['pngjs: Sub, level 1, Huffman only (the pngjs default)', 'pngjs', undefined],
  ["pngjs: all five filters, level 9 (pngjs's own default)", 'pngjs', { kind: 'pngjs', deflateLevel: 9, deflateStrategy: 3, filterType: -1 }],
  ['sharp + libvips: level 0 (stored), no filter', 'sharp', { kind: 'libvips', compressionLevel: 0, adaptiveFiltering: false }],
  ['sharp + libvips: level 1, no filter', 'sharp', { kind: 'libvips', compressionLevel: 1, adaptiveFiltering: false }],
  ['sharp + libvips: level 1, adaptive filters', 'sharp', { kind: 'libvips', compressionLevel: 1, adaptiveFiltering: true }],
  ['sharp + libvips: level 2, adaptive filters', 'sharp', { kind: 'libvips', compressionLevel: 2, adaptiveFiltering: true }],
  ["sharp + libvips: level 6, no filter (sharp's default)", 'sharp', { kind: 'libvips', compressionLevel: 6, adaptiveFiltering: false }],
  ['sharp + zlib-direct: stored (level 0), no filter', 'sharp', { kind: 'zlib', level: 0, strategy: 0, filter: 0 }],
  ['sharp + zlib-direct: Sub, level 1, Huffman only', 'sharp', { kind: 'zlib', level: 1, strategy: 2, filter: 1, memLevel: 9 }],
  ['sharp + zlib-direct: Up, level 1, RLE', 'sharp', { kind: 'zlib', level: 1, strategy: 3, filter: 2, memLevel: 9 }],
  ['sharp + zlib-direct: Up, level 1, Huffman only (the sharp default)', 'sharp', undefined],
];

/** A side-by-side run's figures, for the floor's note. */
interface SideFigures {
  others: number;
  total: number;
  rate: number;
  p50: number;
  sequential: number;
}

/** What the floor says of the targets, from the side-by-side rounds: the bare hops against the targets and the services. */
function floorNote(runs: Map<string, SideFigures[]>): string {
  const ours = runs.get('defaults') ?? [];
  const bare = runs.get(BARE) ?? [];
  const span = (values: number[], digits: number) => `${fmt(Math.min(...values), digits)}-${fmt(Math.max(...values), digits)}`;
  const range = (pick: (f: SideFigures) => number, list = bare, digits = 1) => span(list.map(pick), digits);
  const ratios = span(ours.map((f, i) => f.others / bare[i].others), 1);
  return `The floor: the same hops in bare node:http (bench/images/bareHop.ts: storage is the service's own ImageStore, each image written, fdatasynced and renamed and its folder fsynced before the 201; the master streams the upload into storage and keeps its tasks in a Map; the frontend finds the form's file with Buffer.indexOf; the worker transforms with the same pool; no framework, registry, logging, validation, metrics or task database). Round by round, it cost ${range((f) => f.others)} CPU ms per image outside the worker (target 15; the services ${range((f) => f.others, ours)}, ${ratios}× the floor) and ${range((f) => f.total)} in all (target 50); it ran ${range((f) => f.rate, bare, 2)} images/s (target 24), idle p50 ${range((f) => f.p50, bare, 0)} ms (target 80) and ${range((f) => f.sequential)} sequential uploads/s (target 50).`;
}

async function main() {
  const cores = os.availableParallelism();
  const loadAtStart = os.loadavg()[0];
  process.stdout.write(`generating ${PIPELINE_IMAGES} RGB and ${PIPELINE_IMAGES} RGBA images of 1024x768, and 4000x3000 ones...\n`);
  const sets = {
    RGB: Array.from({ length: PIPELINE_IMAGES }, (_, i) => photoRgb(SMALL.width, SMALL.height, i + 1)),
    RGBA: Array.from({ length: PIPELINE_IMAGES }, (_, i) => photoRgba(SMALL.width, SMALL.height, i + 1)),
  };
  const large = [photoRgb(LARGE.width, LARGE.height, 101), photoRgb(LARGE.width, LARGE.height, 102)];

  process.stdout.write('encoder settings...\n');
  const encoderRows: string[] = [];
  const byName = new Map<string, { cpuMs: number; bytes: number }>();
  for (const [name, codec, encoder] of ENCODER_ROWS) {
    const rgb = await measure(codec, encoder, sets.RGB[0]);
    const rgba = await measure(codec, encoder, sets.RGBA[0]);
    byName.set(name, rgb);
    process.stdout.write(`  ${name}: RGB ${fmt(rgb.cpuMs, 1)} ms ${mib(rgb.bytes)} MiB, RGBA ${fmt(rgba.cpuMs, 1)} ms ${mib(rgba.bytes)} MiB\n`);
    encoderRows.push(`| ${name} | \`${JSON.stringify(rgb.settings)}\` | ${fmt(rgb.cpuMs, 1)} | ${mib(rgb.bytes)} | ${fmt(rgba.cpuMs, 1)} | ${mib(rgba.bytes)} |`);
  }

  process.stdout.write('every op with both codecs...\n');
  const opRows: string[] = [];
  for (const op of OPS) {
    for (const codec of CODECS) {
      const rgb = await measure(codec, undefined, sets.RGB[1], op);
      const rgba = await measure(codec, undefined, sets.RGBA[1], op);
      process.stdout.write(`  ${op} ${codec}: RGB ${fmt(rgb.cpuMs, 1)} ms, RGBA ${fmt(rgba.cpuMs, 1)} ms\n`);
      opRows.push(`| ${op} | ${codec} | ${fmt(rgb.cpuMs, 1)} (${fmt(rgb.decodeMs, 0)} / ${fmt(rgb.encodeMs, 0)}) | ${mib(rgb.bytes)} | ${fmt(rgba.cpuMs, 1)} (${fmt(rgba.decodeMs, 0)} / ${fmt(rgba.encodeMs, 0)}) | ${mib(rgba.bytes)} |`);
    }
  }

  process.stdout.write('in-process pool rates...\n');
  const poolRows: string[] = [];
  const poolRates: Record<string, number> = {};
  for (const codec of CODECS) {
    for (const threads of [1, cores]) {
      const pool = new TransformPool({ threads, codec });
      await poolRate(pool, sets.RGB.slice(0, 2 * threads), SMALL);
      const rgb = await poolRate(pool, sets.RGB.slice(0, threads === 1 ? 12 : PIPELINE_IMAGES), SMALL);
      const rgba = await poolRate(pool, sets.RGBA.slice(0, threads === 1 ? 12 : PIPELINE_IMAGES), SMALL);
      const big = await poolRate(pool, large.slice(0, threads === 1 ? 1 : 2), LARGE);
      await pool.destroy();
      if (threads === cores) Object.assign(poolRates, { [`${codec} RGB`]: rgb.imagesPerSecond, [`${codec} RGBA`]: rgba.imagesPerSecond });
      process.stdout.write(`  ${codec} x${threads}: RGB ${fmt(rgb.imagesPerSecond)}/s, RGBA ${fmt(rgba.imagesPerSecond)}/s, large ${fmt(big.imagesPerSecond, 3)}/s\n`);
      poolRows.push(`| ${codec} | ${threads} | ${fmt(rgb.imagesPerSecond)} | ${fmt(rgba.imagesPerSecond)} | ${fmt(big.imagesPerSecond, 3)} (${fmt(big.mpixPerSecond)} MPixel/s) |`);
    }
  }

  const row = (prefix: string) => [...byName.entries()].find(([name]) => name.startsWith(prefix))![1];
  const chosen = row('sharp + zlib-direct: Up, level 1, Huffman');
  const stored = row('sharp + libvips: level 0');
  const vips1 = row('sharp + libvips: level 1, no');
  const vips2 = row('sharp + libvips: level 2');
  const reference = row('pngjs: Sub');
  const why = `Why the sharp codec encodes with zlib-direct (Up filter, level 1, Huffman only): on the RGB image it takes ${fmt(chosen.cpuMs, 0)} CPU ms for ${mib(chosen.bytes)} MiB, against pngjs's ${fmt(reference.cpuMs, 0)} ms for ${mib(reference.bytes)} MiB. libvips's writer, as sharp offers it, has no such point: level 1 (zlib-ng's fixed Huffman codes) costs ${fmt(vips1.cpuMs, 0)} ms for ${mib(vips1.bytes)} MiB, ${vips1.bytes >= stored.bytes ? 'more than' : 'about as much as'} storing (${fmt(stored.cpuMs, 0)} ms, ${mib(stored.bytes)} MiB); compressing takes level 2 with adaptive filters, ${fmt(vips2.cpuMs, 0)} ms for ${mib(vips2.bytes)} MiB. Storing is the cheapest transform but ${fmt(stored.bytes / chosen.bytes, 2)}× the bytes, which storage, the worker's upload and every download then pay for. Decoding is libvips's in every sharp row: libpng and zlib-ng unfilter and inflate natively, where pngjs's JavaScript decoder is most of its cost.`;

  const pipelineRows: string[] = [];
  const cpuNotes: string[] = [];
  const largeNotes: string[] = [];
  for (const [label, images] of Object.entries(sets)) {
    process.stdout.write(`pipeline, ${label}...\n`);
    const run = await pipeline(images, {}, large[0]);
    const perImage = run.cpuByService.map((s) => s / images.length);
    const total = perImage.reduce((a, b) => a + b, 0);
    const others = total - perImage[3];
    const ratio = run.rate / poolRates[`sharp ${label}`];
    pipelineRows.push(
      `| ${label} | throughput | ${fmt(run.rate)} images/s | ≥ 24 images/s and ≥ 90 % of the pool's ${fmt(poolRates[`sharp ${label}`])} | ${fmt(ratio * 100, 0)} %: ${check(run.rate >= 24 && ratio >= 0.9)} |`,
      `| ${label} | CPU per image, every service | ${fmt(total, 3)} CPU-s | ≤ 0.050 | ${check(total <= 0.05)} |`,
      `| ${label} | CPU per image, all but the worker | ${fmt(others, 3)} CPU-s | ≤ 0.015 | ${check(others <= 0.015)} |`,
      `| ${label} | idle latency p50 / p99 (${IDLE_SAMPLES} uploads, one at a time) | ${fmt(run.p50, 0)} / ${fmt(run.p99, 0)} ms | ≤ 80 / ≤ 150 ms | ${check(run.p50 <= 80 && run.p99 <= 150)} |`,
      `| ${label} | ${SEQUENTIAL_UPLOADS} sequential uploads through the frontend | ${fmt(run.sequentialRate, 1)} accepted/s | ≥ 50/s | ${check(run.sequentialRate >= 50)} |`,
    );
    process.stdout.write(`  ${pipelineRows.slice(-5).join('\n  ')}\n`);
    cpuNotes.push(`${label}: ${SERVICE_NAMES.map((n, i) => `${n} ${fmt(perImage[i] * 1000, 1)}`).join(', ')} ms`);
    largeNotes.push(`${fmt(percentile(run.largeMs, 50), 0)} ms (fastest ${fmt(Math.min(...run.largeMs), 0)}) in the ${label} run`);
  }

  // What the worker's nice and the image services' heap growth buy: alternating runs, so load drifts alike for each.
  const variants: [string, Variant][] = [
    ['defaults', {}],
    ['worker at nice 0 (WORKER_NICE=0)', { workerEnv: { WORKER_NICE: '0' } }],
    [`image services without \`${IMAGE_HEAP_GROWTH}\` (\`${V8_HEAP_GROWTH}\`)`, { v8HeapGrowth: true }],
    [BARE, { bare: true }],
  ];
  const sideRows: string[] = [];
  const sideRuns = new Map<string, SideFigures[]>();
  for (let round = 1; round <= SIDE_BY_SIDE_ROUNDS; round++) {
    for (const [name, variant] of variants) {
      process.stdout.write(`side by side, round ${round}: ${name}...\n`);
      const run = await pipeline(sets.RGB, variant);
      const perImage = run.cpuByService.map((cpu) => (cpu / sets.RGB.length) * 1000);
      const others = perImage.reduce((a, b) => a + b, 0) - perImage[3];
      sideRuns.set(name, [...(sideRuns.get(name) ?? []), { others, total: others + perImage[3], rate: run.rate, p50: run.p50, sequential: run.sequentialRate }]);
      sideRows.push(`| ${round} | ${name} | ${fmt(run.rate)} | ${fmt(others, 1)} | ${fmt(perImage[1], 1)} | ${fmt(perImage[3], 1)} | ${fmt(run.p50, 0)} / ${fmt(run.p99, 0)} | ${fmt(run.sequentialRate, 1)} |`);
      process.stdout.write(`  ${sideRows.at(-1)}\n`);
    }
  }

  const report = `
Inputs: seeded 1024x768 images, ${PIPELINE_IMAGES} of each kind: RGB as in the issue (a smooth gradient, a sinusoid and Gaussian noise of σ 6, opaque; ${mib(sets.RGB[0].length)} MiB each) and the RGBA ones used before (gradients, a soft blob, ±10 uniform noise, opaque alpha; ${mib(sets.RGBA[0].length)} MiB each); 4000x3000 RGB for the large rows. ${cores} cores of a shared virtual machine: figures vary by some 15 % from run to run, and more when other work runs (1-minute load average ${fmt(loadAtStart, 1)} at the start of this run, ${fmt(os.loadavg()[0], 1)} at the end; 2 or less means the machine was otherwise idle).

### Encoder settings (one 1024x768 image, swap-rg, in this process)

CPU ms per transform (decode + op + encode, every thread of the process), and the output's size.

| setting | settings | RGB CPU ms | RGB output MiB | RGBA CPU ms | RGBA output MiB |
| --- | --- | --- | --- | --- | --- |
${encoderRows.join('\n')}

${why}

### Every op, both codecs at their defaults

CPU ms per transform (wall ms of decode / encode in brackets), and the output's size.

| op | codec | RGB CPU ms | RGB MiB | RGBA CPU ms | RGBA MiB |
| --- | --- | --- | --- | --- | --- |
${opRows.join('\n')}

### Transform rate in-process (TransformPool → thread.ts → transformPng, swap-rg)

| codec | threads | 1024x768 RGB images/s | 1024x768 RGBA images/s | 4000x3000 RGB images/s |
| --- | --- | --- | --- | --- |
${poolRows.join('\n')}

### Pipeline (registry, storage with fsync, master, one worker at its defaults (sharp, ${cores} threads, one task prefetched, nice 10) and the frontend, as \`npm start\` runs them: the bundles in dist/, each with its node options from platform/services.ts, the image services with \`${IMAGE_HEAP_GROWTH}\` (set on themselves as they start), the registry at its defaults; ${PIPELINE_IMAGES} images uploaded through the frontend's /submitTask, ${UPLOADS_IN_FLIGHT} at a time)

| images | figure | measured | target | |
| --- | --- | --- | --- | --- |
${pipelineRows.join('\n')}

CPU per image by service over the throughput run: ${cpuNotes.join('; ')}. Uploads answered 503 and retried (no master listed for a moment): ${retried503.count}.

A 4000x3000 RGB image (${mib(large[0].length)} MiB) uploaded straight to the master, ${LARGE_UPLOADS} times one at a time (each after the last one's task was done), median time to its 201: ${largeNotes.join(', ')}.

### What the defaults buy, and the floor: side by side (RGB, the runs above again, ${SIDE_BY_SIDE_ROUNDS} rounds alternating)

| round | run | images/s | CPU ms per image, all but the worker | storage | worker | idle p50 / p99 ms | sequential uploads/s |
| --- | --- | --- | --- | --- | --- | --- | --- |
${sideRows.join('\n')}

${floorNote(sideRuns)}
`;
  writeReport('images', 'Image pipeline', 'npm run bench:images', report);
  process.stdout.write('bulk submit of a folder...\n');
  writeReport('images-bulk', 'Image pipeline: bulk submit', 'npm run bench:images', await bulkSection());
}

await main();
