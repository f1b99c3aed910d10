/**
 * Events benchmark (`npm run bench:events`), figures to docs/benchmarks.md:
 *   1. fan-out latency: one event to 100 subscribers, from the publish request to the last of them receiving it
 *   2. sustained publish rate with 10 subscribers (batches of 100 per POST /publish, 4 in flight), end to end
 *   3. the events service's RSS while one of 10 subscribers is dead and events keep coming
 *   4. the time a returning subscriber takes to catch up on 10,000 events it missed
 * Subscribers are registered services (registry metadata, NDJSON deliveries) served by a separate load
 * process (this file, run as `load`), so the events service's CPU is its own. Times that cross processes
 * are wall-clock with sub-millisecond precision.
 */
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile, procStats, writeReport } from './report.ts';
import { callThrough } from './call.ts';
import { startProcess, tempDir, type Proc } from '../harness/processes.ts';

const now = () => performance.timeOrigin + performance.now();
const call = callThrough(new http.Agent({ keepAlive: true, maxSockets: 16 }));

// ---------------------------------------------------------------------------------------------
// The load process: many subscriber servers, each registered with the registry as a service that
// subscribes to bench.* in broadcast mode, and a control server for the benchmark.

interface Sub {
  server: http.Server;
  url: string;
  port: number;
  count: number;
  /** When its first and its latest delivery since the last reset arrived. */
  firstAt: number;
  lastAt: number;
  receipts: Map<number, number>;
}

function runLoad(registryUrl: string): void {
  const subs = new Map<string, Sub>();
  let detail = false;
  const serve = (sub: Sub) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const at = now();
      let lines = 0;
      for (let i = body.indexOf('\n'); i >= 0; i = body.indexOf('\n', i + 1)) lines++;
      if (sub.count === 0) sub.firstAt = at;
      sub.count += lines;
      sub.lastAt = at;
      if (detail) for (const line of body.split('\n')) if (line) sub.receipts.set((JSON.parse(line) as { id: number }).id, at);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
    });
  };
  const listenOn = (sub: Sub, port: number) =>
    new Promise<void>((resolve) => {
      sub.server = http.createServer(serve(sub));
      sub.server.keepAliveTimeout = 60_000;
      sub.server.listen(port, '127.0.0.1', () => resolve());
    });
  const control = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', async () => {
      const input = text ? JSON.parse(text) : {};
      const answer = (data: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(data));
      if (req.url === '/add') {
        const urls: string[] = [];
        for (let i = 0; i < input.count; i++) {
          const sub = { count: 0, firstAt: 0, lastAt: 0, receipts: new Map() } as unknown as Sub;
          await listenOn(sub, 0);
          sub.port = (sub.server.address() as AddressInfo).port;
          sub.url = `http://127.0.0.1:${sub.port}`;
          subs.set(sub.url, sub);
          const metadata = { 'events.broadcast': 'bench.*' };
          await call('POST', `${registryUrl}/services`, { serviceName: input.name, serviceURL: sub.url, heartbeatURL: `${sub.url}/heartbeat`, metadata });
          urls.push(sub.url);
        }
        return answer({ urls });
      }
      if (req.url === '/detail') return answer((detail = input.detail));
      if (req.url === '/stats') return answer([...subs.values()].map((s) => ({ url: s.url, count: s.count, firstAt: s.firstAt, lastAt: s.lastAt })));
      if (req.url === '/receipts') return answer([...subs.values()].map((s) => [...s.receipts]));
      if (req.url === '/reset') {
        for (const s of subs.values()) (s.count = 0), (s.firstAt = s.lastAt = 0), s.receipts.clear();
        return answer({});
      }
      if (req.url === '/kill') {
        const sub = subs.get(input.url)!;
        sub.server.closeAllConnections();
        await new Promise((resolve) => sub.server.close(resolve));
        return answer({});
      }
      if (req.url === '/revive') {
        const sub = subs.get(input.url)!;
        await listenOn(sub, sub.port);
        return answer({ at: now() });
      }
      if (req.url === '/remove') {
        for (const sub of [...subs.values()]) {
          await call('DELETE', `${registryUrl}/services`, sub.url, 'text/plain');
          sub.server.closeAllConnections();
          sub.server.close();
          subs.delete(sub.url);
        }
        return answer({});
      }
      res.writeHead(404).end();
    });
  });
  control.listen(0, '127.0.0.1', () => process.stdout.write(`load listening on http://127.0.0.1:${(control.address() as AddressInfo).port}\n`));
}

const load = (base: string, what: string, input: unknown = {}) => call('POST', `${base}/${what}`, input).then((r) => r.data);

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function subscriberStates(events: string): Promise<Map<string, { state: string; queued: number; dropped: number }>> {
  const { data } = await call('GET', `${events}/subscribers`);
  return new Map((data.subscribers as { key: string; state: string; queued: number; dropped: number }[]).map((s) => [s.key, s]));
}

async function upSubscribers(events: string, urls: string[]): Promise<boolean> {
  const states = await subscriberStates(events);
  return urls.every((u) => states.get(`instance:${u}`)?.state === 'up');
}

const batch = (n: number, topic: string, from = 0) => Array.from({ length: n }, (_, i) => ({ topic, payload: { i: from + i, at: 0, note: 'a benchmark event of about a hundred bytes' } }));

async function fanOut(events: string, eventsProc: Proc, base: string): Promise<string[]> {
  const { urls } = await load(base, 'add', { count: 100, name: 'fanout' });
  await waitUntil('100 subscribers up', () => upSubscribers(events, urls));
  for (let i = 0; i < 50; i++) await call('POST', `${events}/publish`, { topic: 'bench.warm', payload: i });
  await waitUntil('warm-up delivered', async () => ((await load(base, 'stats')) as { count: number }[]).every((s) => s.count >= 50));
  await load(base, 'detail', { detail: true });
  const cpuBefore = procStats(eventsProc.child.pid!).cpuSeconds;
  const sentAt = new Map<number, number>();
  const acks: number[] = [];
  for (let i = 0; i < 300; i++) {
    const at = now();
    const { data } = await call('POST', `${events}/publish`, { topic: 'bench.fanout', payload: { i } });
    acks.push(now() - at);
    sentAt.set(data.events[0].id, at);
    await sleep(15);
  }
  await waitUntil('every fan-out delivered', async () => ((await load(base, 'stats')) as { count: number }[]).every((s) => s.count >= 350));
  const cpuMs = ((procStats(eventsProc.child.pid!).cpuSeconds - cpuBefore) * 1000) / 300;
  const receipts = (await load(base, 'receipts')) as [number, number][][];
  const latencies = [...sentAt].map(([id, at]) => Math.max(...receipts.map((r) => new Map(r).get(id) ?? Infinity)) - at);
  await load(base, 'detail', { detail: false });
  await load(base, 'remove');
  return [
    `- fan-out to 100 subscribers, 300 events 15 ms apart, from the publish request to the last subscriber receiving it: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (target p99 ≤ 20 ms); the events service spent ${cpuMs.toFixed(1)} ms of CPU per event (journal commit and 100 deliveries); the publish itself (to its 202, journaled) p50 ${percentile(acks, 50).toFixed(1)} ms, p99 ${percentile(acks, 99).toFixed(1)} ms`,
  ];
}

async function publishFor(events: string, ms: number, inFlight: number, size: number, topic: string): Promise<number> {
  let accepted = 0;
  const deadline = Date.now() + ms;
  const body = JSON.stringify(batch(size, topic));
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < deadline) {
        const { status } = await call('POST', `${events}/publish`, body);
        if (status === 202) accepted += size;
      }
    }),
  );
  return accepted;
}

async function rate(events: string, eventsProc: Proc, base: string, urls: string[]): Promise<string[]> {
  const total = async () => ((await load(base, 'stats')) as { count: number }[]).map((s) => s.count);
  await publishFor(events, 3000, 4, 100, 'bench.warm');
  await waitUntil('warm-up delivered', async () => (await upSubscribers(events, urls)) && (await subscriberStates(events)).get(`instance:${urls[0]}`)!.queued === 0);
  await load(base, 'reset');
  const cpuBefore = procStats(eventsProc.child.pid!).cpuSeconds;
  const started = now();
  const accepted = await publishFor(events, 15_000, 4, 100, 'bench.rate');
  const acceptedAt = now();
  await waitUntil('every event delivered to all 10', async () => (await total()).every((c) => c >= accepted), 120_000);
  const deliveredAt = now();
  const cpu = procStats(eventsProc.child.pid!).cpuSeconds - cpuBefore;
  const seconds = (deliveredAt - started) / 1000;
  return [
    `- sustained publish rate with 10 subscribers (batches of 100 per POST /publish, 4 in flight, 15 s): ${Math.round(accepted / ((acceptedAt - started) / 1000)).toLocaleString('en-US')} events/s acknowledged (journaled), ${Math.round(accepted / seconds).toLocaleString('en-US')} events/s end to end (every event delivered to all 10; ${(accepted * 10).toLocaleString('en-US')} deliveries), events service CPU ${(cpu / seconds).toFixed(2)} cores (target ≥ 10,000 events/s)`,
  ];
}

async function deadSubscriber(events: string, eventsProc: Proc, base: string, urls: string[], seconds: number): Promise<string[]> {
  const dead = urls[urls.length - 1];
  await load(base, 'kill', { url: dead });
  await waitUntil('the registry to see it down', async () => (await subscriberStates(events)).get(`instance:${dead}`)?.state === 'down');
  const rss: number[] = [];
  const started = Date.now();
  const perSecond = 3000;
  let sent = 0;
  while (Date.now() - started < seconds * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * perSecond);
    while (sent < due) {
      await call('POST', `${events}/publish`, batch(100, 'bench.dead', sent));
      sent += 100;
    }
    if (rss.length < Math.floor((Date.now() - started) / 1000) + 1) rss.push(procStats(eventsProc.child.pid!).rssMB);
    await sleep(20);
  }
  const state = (await subscriberStates(events)).get(`instance:${dead}`)!;
  const revivedAt = (await load(base, 'revive', { url: dead })).at as number;
  const kept = state.queued;
  await waitUntil('the revived subscriber to catch up', async () => (await subscriberStates(events)).get(`instance:${dead}`)!.queued === 0, 120_000);
  const caughtUp = now() - revivedAt;
  const third = Math.floor(rss.length / 3);
  return [
    `- one of 10 subscribers dead for ${seconds} s while 3,000 events/s keep coming (${sent.toLocaleString('en-US')} events; EVENTS_QUEUE_LIMIT=50000): events service RSS ${rss[0].toFixed(0)} MB at the start, ${Math.max(...rss.slice(0, third)).toFixed(0)} MB max in the first third, ${Math.max(...rss.slice(third, 2 * third)).toFixed(0)} MB in the second, ${Math.max(...rss.slice(2 * third)).toFixed(0)} MB in the last; its queue held ${kept.toLocaleString('en-US')} (the bound of 50,000 plus the batch in flight), ${state.dropped.toLocaleString('en-US')} oldest dropped and counted; back, it caught up on those ${kept.toLocaleString('en-US')} in ${(caughtUp / 1000).toFixed(1)} s`,
    `  RSS each second (MB): ${rss.map((r) => r.toFixed(0)).join(' ')}`,
  ];
}

async function catchUp(events: string, base: string, urls: string[]): Promise<string[]> {
  const away = urls[0];
  await load(base, 'kill', { url: away });
  await waitUntil('the registry to see it down', async () => (await subscriberStates(events)).get(`instance:${away}`)?.state === 'down');
  await load(base, 'reset');
  for (let i = 0; i < 10_000; i += 500) await call('POST', `${events}/publish`, batch(500, 'bench.missed', i));
  await waitUntil('the others to have all 10,000', async () => ((await load(base, 'stats')) as { url: string; count: number }[]).filter((s) => s.url !== away).every((s) => s.count >= 10_000));
  const queued = (await subscriberStates(events)).get(`instance:${away}`)!.queued;
  const revivedAt = (await load(base, 'revive', { url: away })).at as number;
  const stats = async () => ((await load(base, 'stats')) as { url: string; count: number; firstAt: number; lastAt: number }[]).find((s) => s.url === away)!;
  await waitUntil('the returning subscriber to catch up', async () => (await stats()).count >= 10_000, 120_000);
  const { firstAt, lastAt: doneAt } = await stats();
  return [
    `- a returning subscriber catches up on ${queued.toLocaleString('en-US')} missed events in ${((doneAt - revivedAt) / 1000).toFixed(2)} s from listening again (the registry's next check, every 1 s, finds it up first); ${((doneAt - firstAt) / 1000).toFixed(2)} s from its first delivery to its last`,
  ];
}

async function main(): Promise<void> {
  const deadSeconds = Number(process.env.BENCH_DEAD_SECONDS ?? 60);
  const registry = await startProcess('cmd/registry.ts', { env: { DATA_DIR: tempDir('bench-events-registry-'), LOG_LEVEL: 'info', HEARTBEAT_INTERVAL_MS: process.env.BENCH_HEARTBEAT_MS ?? '1000', HEARTBEAT_TIMEOUT_MS: '1000' }, ready: /registry listening on (http:\/\/\S+)/ });
  const eventsProc = await startProcess('cmd/events.ts', {
    env: { REGISTRY_URL: registry.url, DATA_DIR: tempDir('bench-events-'), LOG_LEVEL: 'info', EVENTS_QUEUE_LIMIT: '50000' },
    ready: /events listening on (http:\/\/\S+)/,
    nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
  });
  const loadProc = await startProcess('bench/events.ts', { args: ['load', registry.url], ready: /load listening on (http:\/\/\S+)/ });
  const lines: string[] = [];
  const loadAtStart = os.loadavg()[0];
  try {
    const events = eventsProc.url;
    const base = loadProc.url;
    const phases = (process.env.BENCH_PHASES ?? 'fanout,rate,dead,catchup').split(',');
    if (phases.includes('fanout')) lines.push(...(await fanOut(events, eventsProc, base)));
    const { urls } = await load(base, 'add', { count: 10, name: 'ten' });
    await waitUntil('10 subscribers up', () => upSubscribers(events, urls));
    if (phases.includes('rate')) lines.push(...(await rate(events, eventsProc, base, urls)));
    if (phases.includes('dead')) lines.push(...(await deadSubscriber(events, eventsProc, base, urls, deadSeconds)));
    if (phases.includes('catchup')) lines.push(...(await catchUp(events, base, urls)));
    lines.push(
      '',
      `Processes: registry, events service (defaults but EVENTS_QUEUE_LIMIT=50000; journal fsynced at every commit), and one load process serving every subscriber; the publisher is the benchmark process. The dead phase runs ${deadSeconds} s (BENCH_DEAD_SECONDS). Load average when the run began: ${loadAtStart.toFixed(1)} on ${os.cpus().length} cores (other work shares this machine; latencies move with it).`,
    );
  } finally {
    await loadProc.stop();
    await eventsProc.stop();
    await registry.stop();
  }
  writeReport('events', 'Events service', 'npm run bench:events', lines.join('\n'));
}

if (process.argv[2] === 'load') runLoad(process.argv[3]);
else await main();
