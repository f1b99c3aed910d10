/** The chaos run's end checks: tasks, watchers, log lines and recovery (nothing lost, duplicated or wrong). */
import fs from 'node:fs';
import path from 'node:path';
import { alive } from '../../harness/processes.ts';
import type { InstanceView } from '../../registry/protocol.ts';
import type { FaultOutcome } from './faults.ts';
import { resultMismatch } from './images.ts';
import type { Submission } from './load.ts';
import type { LogProgress } from './monitor.ts';
import { watcherDisagreements, type Platform } from './platform.ts';
import { getJson } from './poll.ts';
import { fmt, LOG_LINES, WATCHERS } from './settings.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export async function checkTasks(p: Platform, subs: Submission[]): Promise<{ checks: Check[]; taskCounts: Record<string, number>; attemptsHistogram: Record<number, number> }> {
  const checks: Check[] = [];
  const { tasks, counts } = await getJson<{ tasks: { id: number; state: string; op: string; width: number; height: number; attempts: number; error?: string }[]; counts: Record<string, number> }>(
    `${p.master.url}/tasks?limit=1000`,
    10_000,
  );
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const unsubmitted = subs.filter((s) => s.taskId === undefined);
  const ids = subs.map((s) => s.taskId).filter((id): id is number => id !== undefined);
  const reused = ids.length - new Set(ids).size;
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const notDone = subs.filter((s) => s.taskId !== undefined && byId.get(s.taskId)?.state !== 'done');
  const extra = tasks.filter((t) => !ids.includes(t.id));
  checks.push({ name: `all ${subs.length} images submitted`, ok: unsubmitted.length === 0, detail: unsubmitted.length ? `${unsubmitted.length} never accepted` : `${subs.reduce((a, s) => a + s.attempts, 0)} upload attempts for ${subs.length} images` });
  checks.push({ name: 'every task id distinct (none reused)', ok: reused === 0, detail: `${ids.length} ids, ${reused} repeated` });
  checks.push({
    name: `exactly ${subs.length} tasks at the master (none duplicated)`,
    ok: total === subs.length && extra.length === 0,
    detail: `${total} tasks (${JSON.stringify(counts)}); ${extra.length} not matching a submission${extra.length ? `: ${extra.slice(0, 5).map((t) => `#${t.id} ${t.op} ${t.width}x${t.height}`).join(', ')}` : ''}; ${subs.reduce((a, s) => a + s.ambiguous, 0)} upload attempts whose outcome was unknown to the client`,
  });
  checks.push({
    name: `all ${subs.length} tasks done`,
    ok: notDone.length === 0,
    detail: notDone.length ? notDone.slice(0, 5).map((s) => `#${s.taskId}: ${byId.get(s.taskId!)?.state} ${byId.get(s.taskId!)?.error ?? ''}`).join('; ') : `${counts.done} done`,
  });
  const mismatches: string[] = [];
  let verified = 0;
  for (const sub of subs) {
    if (sub.taskId === undefined || byId.get(sub.taskId)?.state !== 'done') continue;
    try {
      const res = await fetch(`${p.master.url}/tasks/${sub.taskId}/result`, { signal: AbortSignal.timeout(10_000) });
      if (res.status !== 200) throw new Error(`result answered ${res.status}`);
      const problem = resultMismatch(sub.image, Buffer.from(await res.arrayBuffer()));
      if (problem) mismatches.push(`#${sub.taskId} (${sub.image.op} ${sub.image.width}x${sub.image.height}): ${problem}`);
      else verified++;
    } catch (err) {
      mismatches.push(`#${sub.taskId}: ${(err as Error).message}`);
    }
  }
  checks.push({ name: 'every result pixel-exact', ok: mismatches.length === 0 && verified === subs.length, detail: `${verified} verified${mismatches.length ? `; ${mismatches.slice(0, 5).join('; ')}` : ''}` });
  const attemptsHistogram: Record<number, number> = {};
  for (const t of tasks) attemptsHistogram[t.attempts] = (attemptsHistogram[t.attempts] ?? 0) + 1;
  return { checks, taskCounts: counts, attemptsHistogram };
}

/** Every "chaos-line <i>" in the log service's files, counted by i. */
function countLogLines(dir: string, total: number): { seen: Uint32Array; files: number } {
  const seen = new Uint32Array(total);
  let files = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith('logs-')) continue;
    files++;
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line.includes('chaos-line ')) continue;
      try {
        const entry = JSON.parse(line) as { service?: string; message?: string };
        const match = /^chaos-line (\d+)$/.exec(entry.message ?? '');
        if (entry.service === 'chaoslog' && match && Number(match[1]) < total) seen[Number(match[1])]++;
      } catch {
        // not a JSON line
      }
    }
  }
  return { seen, files };
}

function ranges(ids: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    out.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j;
  }
  return out.slice(0, 10).join(', ') + (out.length > 10 ? `, … (${out.length} ranges)` : '');
}

/** Every watcher agrees with the registry, and every instance listed as up is alive and answers. */
export async function checkWatchers(watcherUrls: string[], final: InstanceView[], agreedAfterS: number | undefined): Promise<Check[]> {
  const disagreement = await watcherDisagreements(watcherUrls, final);
  const up = final.filter((i) => i.state === 'up');
  const deadUp: string[] = [];
  for (const i of up) {
    const pid = Number(i.metadata.pid);
    const answers = await fetch(`${i.serviceURL}/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
    if (!alive(pid) || !answers) deadUp.push(`${i.serviceName} ${i.serviceURL} (pid ${pid})`);
  }
  return [
    {
      name: `every watcher's provider table equals the registry's listing (${WATCHERS} watchers)`,
      ok: disagreement.differing === 0,
      detail: disagreement.differing ? `${disagreement.differing} differ: ${disagreement.examples.join(' | ')}` : `all agree${agreedAfterS !== undefined ? ` (${fmt(agreedAfterS)} s after the last fault)` : ''}`,
    },
    { name: 'no dead instance listed as up', ok: deadUp.length === 0, detail: deadUp.length ? deadUp.join(', ') : `${up.length} up instances, each alive and answering /health; ${final.length - up.length} down` },
  ];
}

/** Every line the log client emitted is in the log service's files once (run after both have stopped). */
export function checkLogLines(logDataDir: string, lastProgress: LogProgress | undefined): Check {
  const { seen, files } = countLogLines(logDataDir, LOG_LINES);
  const missing: number[] = [];
  const twice: number[] = [];
  seen.forEach((n, i) => (n === 0 ? missing.push(i) : n > 1 && twice.push(i)));
  const dropped = lastProgress?.dropped ?? NaN;
  return {
    name: `every one of ${LOG_LINES.toLocaleString('en')} log lines stored exactly once (or reported dropped; target 0 dropped)`,
    ok: twice.length === 0 && missing.length === dropped && dropped === 0,
    detail: `${(LOG_LINES - missing.length).toLocaleString('en')} stored in ${files} file(s); ${missing.length} missing${missing.length ? ` (${ranges(missing)})` : ''}; ${twice.length} stored more than once${twice.length ? ` (${ranges(twice)})` : ''}; the client reported ${dropped} dropped, ${lastProgress?.rejected} rejected, ${lastProgress?.retries} retried batches in ${lastProgress?.posts} posts`,
  };
}

export function checkRecovery(outcomes: FaultOutcome[]): Check {
  const all = outcomes.every((o) => o.healthyS !== undefined && o.drainedS !== undefined);
  return {
    name: 'recovered from every fault (every process up in the registry, backlog back to its level before the fault)',
    ok: all,
    detail: all ? `${outcomes.length} faults` : outcomes.filter((o) => o.healthyS === undefined || o.drainedS === undefined).map((o) => `${o.fault.kind} at ${fmt(o.fault.atS)} s`).join(', '),
  };
}
