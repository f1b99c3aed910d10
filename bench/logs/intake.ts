/** Phase 3: four clients posting JSON arrays of 1,000 lines, each waiting for its 202 (written and fsynced). */
import http from 'node:http';
import { metricSum, onDisk, Sampler, startLog } from './logService.ts';

export interface IntakeFigures {
  clients: number;
  lines: number;
  posts: number;
  seconds: number;
  total: number;
  rate: number;
  cpu: number;
  /** CPU seconds the posting clients (this process) spent meanwhile. */
  clientCpu: number;
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

/** POSTs one array on the client's own connection; resolves with the status once the answer is read. */
function postArray(url: URL, agent: http.Agent, batchId: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, timeout: 30_000, headers: { 'content-type': 'application/json', 'content-length': body.length, 'x-log-batch-id': batchId } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${batchId} within 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `clients` loops, each posting `posts` arrays of `lines` lines, the next as soon as the last is answered 202.
 * node:http on a kept-alive connection per client rather than fetch: the clients share the machine with the log
 * service, and fetch cost them about as much CPU per line as the log service spends.
 */
async function postArrays(url: string, tagPrefix: string, clients: number, posts: number, lines: number): Promise<{ seconds: number; tags: string[] }> {
  const tags = Array.from({ length: clients }, (_, c) => `${tagPrefix}-${c}`);
  const target = new URL('/log', url);
  const t0 = performance.now();
  await Promise.all(
    tags.map(async (tag) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let p = 0; p < posts; p++) {
          const status = await postArray(target, agent, `${tag}-${p}`, Buffer.from(arrayBody(tag, p * lines, lines)));
          if (status !== 202) throw new Error(`POST /log answered ${status} to ${tag} post ${p}`);
        }
      } finally {
        agent.destroy();
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
  let clientCpu: number;
  let fsyncs: number;
  try {
    await postArrays(intake.url, 'arrays-warm-up', clients, 30, lines);
    sampler.peakRssMB = 0;
    const before = sampler.sample().cpuSeconds;
    const fsyncsBefore = await metricSum(intake.url, 'log_fsyncs', '');
    const clientBefore = process.cpuUsage();
    arrays = await postArrays(intake.url, 'arrays', clients, posts, lines);
    cpu = sampler.sample().cpuSeconds - before;
    const client = process.cpuUsage(clientBefore);
    clientCpu = (client.user + client.system) / 1e6;
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
    clientCpu,
    fsyncs,
    peakRssMB: sampler.peakRssMB,
    lost: arrays.tags.reduce((sum, tag) => sum + posts * lines - (disk.get(tag)?.distinct.size ?? 0), 0),
    dupes: arrays.tags.reduce((sum, tag) => sum + (disk.get(tag)?.duplicates ?? 0), 0),
    dataDir: intake.dataDir,
  };
}
