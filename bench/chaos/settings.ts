/** The chaos run's settings (environment), its clock and its console line. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SEED = Number(process.env.CHAOS_SEED ?? 1);
export const IMAGES = Number(process.env.CHAOS_IMAGES ?? 300);
export const LOG_LINES = Number(process.env.CHAOS_LOG_LINES ?? 100_000);
export const LOG_RATE = Number(process.env.CHAOS_LOG_RATE ?? 1000);
export const WATCHERS = Number(process.env.CHAOS_WATCHERS ?? 20);
export const DEADLINE_MS = Number(process.env.CHAOS_DEADLINE_S ?? 480) * 1000;
export const SUBMIT_SECONDS = Number(process.env.CHAOS_SUBMIT_S ?? 60);
export const FAULTS_UNTIL_S = Number(process.env.CHAOS_FAULTS_S ?? 85);
/** Registry replicas on a private etcd (`--registry-replicas N` or CHAOS_REGISTRY_REPLICAS); 1 is the file store. */
export const REGISTRY_REPLICAS = registryReplicas();
export const HEARTBEAT = { HEARTBEAT_INTERVAL_MS: '250', HEARTBEAT_TIMEOUT_MS: '500', HEARTBEAT_FAILURES: '3', NOTIFY_TIMEOUT_MS: '1000' };
export const WATCHED = ['imagemaster', 'imagestorage', 'imageworker', 'log'];
/** CHAOS_REPORT sends a trial run's report elsewhere than docs/reliability.md. */
export const REPORT = process.env.CHAOS_REPORT ? path.resolve(process.env.CHAOS_REPORT) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'reliability.md');

function registryReplicas(): number {
  const flag = process.argv.indexOf('--registry-replicas');
  const value = Number(flag >= 0 ? process.argv[flag + 1] : (process.env.CHAOS_REGISTRY_REPLICAS ?? 1));
  if (!Number.isInteger(value) || value < 1 || value > 5) throw new Error(`--registry-replicas must be a whole number from 1 to 5, got ${value}`);
  return value;
}

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
