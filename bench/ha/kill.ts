/**
 * bench:ha's kill -9 section: providers of `target` registered at 50/s alternately through replicas a and b,
 * b SIGKILLed mid-flow; then the acknowledged registrations a does not list (lost), and for each of the 100
 * dependents of the patch rounds the time after the kill until it had been sent every provider a lists.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from '../report.ts';
import { call, now, receiptCount, registration, type Child } from '../registry/cluster.ts';
import type { Receipt } from '../registry/roles.ts';

export interface KillFigures {
  sent: number;
  acknowledged: number;
  /** Answers other than 200, by status (0: no answer, as from the killed one). */
  refused: Record<string, number>;
  /** ms after the kill: until a listed b no more, and until the last call was answered. */
  droppedAfter: number;
  lastAnswerAfter: number;
  lost: number;
  /** Providers a lists up at the end (the truth). */
  truth: number;
  /** Per subscriber, ms after the kill until it agreed (0 if it already did; Infinity if it never did). */
  agreedAfter: number[];
  p50: number;
  p100: number;
  /** Subscribers that never agreed, and how many of the truth's providers the worst of them lacks. */
  never: number;
  worstMissing: number;
}

const SUBSCRIBERS = 100;

export async function upUrls(registry: Child, name: string): Promise<Set<string>> {
  const { data } = await call('GET', `${registry.url}/services?name=${name}`);
  return new Set((data.instances as { serviceURL: string; state: string }[]).filter((i) => i.state === 'up').map((i) => i.serviceURL));
}

async function members(registry: Child): Promise<number> {
  return ((await call('GET', `${registry.url}/replicas`)).data.replicas ?? []).length;
}

export async function killUnderFlow(a: Child, b: Child, load: string, flowMs = 3000): Promise<KillFigures> {
  const acknowledged: string[] = [];
  const refused: Record<string, number> = {};
  let lastAnswerAt = 0;
  const answered = (status: number, url: string) => {
    lastAnswerAt = now();
    if (status === 200) acknowledged.push(url);
    else refused[status] = (refused[status] ?? 0) + 1;
  };
  const calls: Promise<unknown>[] = [];
  // A replica just woken (the SIGSTOP rounds) refuses changes for one lease: start once b takes them.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
    const probe = await call('POST', `${b.url}/services`, registration(load, 'probe/b', 'probe')).catch(() => undefined);
    if (probe?.status === 200) break;
  }
  const receiptsFrom = await receiptCount(load);
  const started = now();
  let n = 0;
  // Paced by the clock, not by answers: 50 a second whatever the replicas' latency.
  for (let next = started; next < started + flowMs; next += 20) {
    await sleep(Math.max(0, next - now()));
    const body = registration(load, `flood/${n}`, 'target');
    const through = n++ % 2 === 0 ? a : b;
    calls.push(call('POST', `${through.url}/services`, body).then((r) => answered(r.status, body.serviceURL), () => answered(0, body.serviceURL)));
  }
  b.child.kill('SIGKILL');
  const killedAt = now();
  const dropped = (async () => {
    while (now() - killedAt < 10_000 && (await members(a).catch(() => 2)) !== 1) await sleep(10);
    return now() - killedAt;
  })();
  // The truth once every call has its answer: the late ones count too.
  await Promise.allSettled(calls);
  const droppedAfter = await dropped;
  let truth = await upUrls(a, 'target');
  let receipts: Receipt[] = [];
  for (const deadline = Date.now() + 10_000; ; ) {
    truth = await upUrls(a, 'target');
    receipts = (await call('GET', `${load}/_receipts?since=${receiptsFrom}`)).data.receipts;
    if (agreement(receipts, truth, killedAt).every(Number.isFinite) || Date.now() > deadline) break;
    await sleep(100);
  }
  const agreedAfter = agreement(receipts, truth, killedAt);
  return {
    sent: n,
    acknowledged: acknowledged.length,
    refused,
    droppedAfter,
    lastAnswerAfter: lastAnswerAt - killedAt,
    lost: acknowledged.filter((url) => !truth.has(url)).length,
    truth: truth.size,
    agreedAfter,
    p50: percentile(agreedAfter, 50),
    p100: Math.max(...agreedAfter),
    never: agreedAfter.filter((v) => !Number.isFinite(v)).length,
    worstMissing: Math.max(0, ...missing(receipts, truth)),
  };
}

/** The URLs each dependent (`/d/<n>`, as the load process records the path) was first sent, with when. */
function firstAdded(receipts: Receipt[]): Map<string, number>[] {
  const out = Array.from({ length: SUBSCRIBERS }, () => new Map<string, number>());
  for (const r of receipts) {
    const match = /^\/d\/(\d+)$/.exec(r.subscriber);
    const seen = match ? out[Number(match[1])] : undefined;
    if (!seen) continue;
    for (const url of r.added) if (!seen.has(url)) seen.set(url, r.at);
  }
  return out;
}

function agreement(receipts: Receipt[], truth: Set<string>, killedAt: number): number[] {
  return firstAdded(receipts).map((seen) => {
    let last = killedAt;
    for (const url of truth) last = Math.max(last, seen.get(url) ?? Infinity);
    return last - killedAt;
  });
}

function missing(receipts: Receipt[], truth: Set<string>): number[] {
  return firstAdded(receipts).map((seen) => [...truth].filter((url) => !seen.has(url)).length);
}
