/** The chaos run's settings (environment), its clock and its console line. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SEED = Number(process.env.CHAOS_SEED ?? 1);
export const IMAGES = Number(process.env.CHAOS_IMAGES ?? 300);
export const LOG_LINES = Number(process.env.CHAOS_LOG_LINES ?? 100_000);
export const LOG_RATE = Number(process.env.CHAOS_LOG_RATE ?? 1000);
export const WATCHERS = Number(process.env.CHAOS_WATCHERS ?? 20);
export const DEADLINE_MS = Number(process.env.CHAOS_DEADLINE_S ?? 480) * 1000;
export const SUBMIT_SECONDS = 60;
export const FAULTS_UNTIL_S = 85;
export const HEARTBEAT = { HEARTBEAT_INTERVAL_MS: '250', HEARTBEAT_TIMEOUT_MS: '500', HEARTBEAT_FAILURES: '3', NOTIFY_TIMEOUT_MS: '1000' };
export const WATCHED = ['imagemaster', 'imagestorage', 'imageworker', 'log'];
export const REPORT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'reliability.md');

/** The run's clock: t0 is when the load and the faults start (set by the run), deadline ends everything. */
export const clock = {
  runStarted: Date.now(),
  deadline: Date.now() + DEADLINE_MS,
  t0: Date.now(),
  loadAtStart: NaN,
};
export const elapsed = (at = Date.now()) => (at - clock.t0) / 1000;
export const say = (line: string) => process.stdout.write(`[chaos ${((Date.now() - clock.runStarted) / 1000).toFixed(1)}s] ${line}\n`);
export const fmt = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits));
