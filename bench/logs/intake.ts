/** Phase 3: four clients posting JSON arrays of 1,000 lines, each waiting for its 202 (written and fsynced). */
import { metricSum, onDisk, Sampler, startLog } from './logService.ts';

export interface IntakeFigures {
  clients: number;
  lines: number;
  posts: number;
  seconds: number;
  total: number;
  rate: number;
  cpu: number;
  fsyncs: number;
  peakRssMB: number;
  lost: number;
  dupes: number;
  dataDir: string;
}

/** A JSON array of 1,000 lines, each numbered (tag, i) so it can be found on disk. */
function arrayBody(tag: string, from: number, lines: number): string {
  const time = new Date().toISOString();
  const parts = new Array<string>(lines);
  for (let k = 0; k < lines; k++) {
    const i = from + k;
    parts[k] = `{"time":"${time}","level":"info","service":"bench-arrays","message":"bench ${tag} line ${i}: the quick brown fox jumps over the lazy dog","tag":"${tag}","i":${i}}`;
  }
  return `[${parts.join(',')}]`;
}

/** `clients` loops, each posting `posts` arrays of `lines` lines, the next as soon as the last is answered 202. */
async function postArrays(url: string, tagPrefix: string, clients: number, posts: number, lines: number): Promise<{ seconds: number; tags: string[] }> {
  const tags = Array.from({ length: clients }, (_, c) => `${tagPrefix}-${c}`);
  const t0 = performance.now();
  await Promise.all(
    tags.map(async (tag) => {
      for (let p = 0; p < posts; p++) {
        const res = await fetch(`${url}/log`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-log-batch-id': `${tag}-${p}` },
          body: arrayBody(tag, p * lines, lines),
          signal: AbortSignal.timeout(30_000),
        });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`POST /log answered ${res.status} to ${tag} post ${p}`);
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, tags };
}

export async function benchIntake(): Promise<IntakeFigures> {
  const clients = 4;
  const lines = 1000;
  const posts = Number(process.env.BENCH_LOG_ARRAY_POSTS ?? 150);
  const intake = await startLog({});
  const sampler = new Sampler(intake.child.pid!);
  let arrays: { seconds: number; tags: string[] };
  let cpu: number;
  let fsyncs: number;
  try {
    await postArrays(intake.url, 'arrays-warm-up', clients, 30, lines);
    sampler.peakRssMB = 0;
    const before = sampler.sample().cpuSeconds;
    const fsyncsBefore = await metricSum(intake.url, 'log_fsyncs', '');
    arrays = await postArrays(intake.url, 'arrays', clients, posts, lines);
    cpu = sampler.sample().cpuSeconds - before;
    fsyncs = (await metricSum(intake.url, 'log_fsyncs', '')) - fsyncsBefore;
  } finally {
    sampler.stop();
    await intake.stop();
  }
  const disk = onDisk(intake.dataDir);
  const total = clients * posts * lines;
  return {
    clients,
    lines,
    posts,
    seconds: arrays.seconds,
    total,
    rate: total / arrays.seconds,
    cpu,
    fsyncs,
    peakRssMB: sampler.peakRssMB,
    lost: arrays.tags.reduce((sum, tag) => sum + posts * lines - (disk.get(tag)?.distinct.size ?? 0), 0),
    dupes: arrays.tags.reduce((sum, tag) => sum + (disk.get(tag)?.duplicates ?? 0), 0),
    dataDir: intake.dataDir,
  };
}
