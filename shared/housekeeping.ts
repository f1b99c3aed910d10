/**
 * Housekeeping: named jobs on cron schedules (node-cron), each run logged with what it removed and
 * counted in /metrics. A job never overlaps itself: a tick that finds its last run still going is
 * skipped (and counted), and a run asked for by hand (a prune route) waits for it. A service wraps
 * its start options with withHousekeeping(options, jobs); stop() ends the schedules and waits for
 * the runs in flight before the service's own onStop closes its stores.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { prom } from './metrics.ts';
import { envString } from './config.ts';
import { within } from './timeout.ts';
import type { Logger } from './logger.ts';
import type { Service, StartServiceOptions } from './service.ts';

/** What one run did: items removed by kind ("tasks", "images", "files"...), and a line of detail. */
export interface JobReport {
  removed?: Record<string, number>;
  detail?: string;
  /** The run stopped part way (what it removed before is still counted). */
  error?: string;
}

export interface HousekeepingJob {
  name: string;
  /** A node-cron expression (an optional seconds field first), or undefined: run only when asked. */
  cron: string | undefined;
  run: () => Promise<JobReport> | JobReport;
}

/** A cron expression from the environment: "off" (or "none") turns the job off; a bad one stops start-up. */
export function envCron(name: string, fallback: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = envString(name, fallback, env).trim();
  if (value === 'off' || value === 'none') return undefined;
  if (!cron.validate(value)) throw new Error(`${name} must be a cron expression such as "0 * * * *" (or off), got "${value}"`);
  return value;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "7d", "12h", "30m", "45s", "500ms", "2w" in milliseconds, or undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2]];
  return Number.isSafeInteger(ms) ? ms : undefined;
}

export function envDuration(name: string, fallback: string, env: NodeJS.ProcessEnv = process.env): number {
  const value = envString(name, fallback, env);
  const ms = parseDuration(value);
  if (ms === undefined) throw new Error(`${name} must be a duration such as 7d, 12h, 30m or 45s, got "${value}"`);
  return ms;
}

/** Housekeeping was stopped (the service is shutting down): no more runs. */
export class HousekeepingStopped extends Error {}

export class Housekeeping {
  private readonly jobs = new Map<string, HousekeepingJob>();
  private readonly schedules: ScheduledTask[] = [];
  private readonly running = new Map<string, Promise<JobReport>>();
  private stopped = false;
  private readonly runs: prom.Counter<'job' | 'outcome'>;
  private readonly removed: prom.Counter<'job' | 'item'>;
  private readonly lastSuccess: prom.Gauge<'job'>;

  constructor(
    private readonly logger: Logger,
    metrics: prom.Registry,
  ) {
    const registers = [metrics];
    this.runs = new prom.Counter({ name: 'housekeeping_runs_total', help: 'Housekeeping runs by job and outcome (ok, failed, skipped: the last run was still going)', labelNames: ['job', 'outcome'], registers });
    this.removed = new prom.Counter({ name: 'housekeeping_removed_total', help: 'Items housekeeping removed, by job and kind', labelNames: ['job', 'item'], registers });
    this.lastSuccess = new prom.Gauge({ name: 'housekeeping_last_success_timestamp_seconds', help: 'When each job last ran without error', labelNames: ['job'], registers });
  }

  /** Adds a job and, when it has a cron expression, starts its schedule. */
  add(job: HousekeepingJob): void {
    if (this.jobs.has(job.name)) throw new Error(`housekeeping job ${job.name} is already added`);
    this.jobs.set(job.name, job);
    this.runs.inc({ job: job.name, outcome: 'ok' }, 0);
    if (!job.cron || this.stopped) return;
    const log = this.logger;
    this.schedules.push(
      cron.schedule(job.cron, () => this.tick(job), {
        // No noOverlap: tick() itself skips a busy job, so the skip is counted and a hand-run counts as busy too.
        name: job.name,
        // node-cron's own chatter (missed ticks after a pause) goes to our logger, not the console.
        logger: { info: (m) => log.debug(`cron: ${m}`), debug: () => {}, warn: (m) => log.debug(`cron: ${m}`), error: (m) => log.warn(`cron: ${String(m)}`) },
      }),
    );
  }

  /** Names and schedules, for the start-up line. */
  describe(): string {
    return [...this.jobs.values()].map((job) => `${job.name} ${job.cron ? `"${job.cron}"` : 'on demand'}`).join(', ');
  }

  private async tick(job: HousekeepingJob): Promise<void> {
    if (this.running.has(job.name)) {
      this.runs.inc({ job: job.name, outcome: 'skipped' });
      this.logger.debug(`housekeeping ${job.name}: skipped, the last run is still going`);
      return;
    }
    await this.execute(job, job.run).catch(() => undefined); // execute logged and counted it
  }

  /**
   * Runs a job now (its own work, or `work` in its place, such as a prune with another age), after the
   * run in flight if there is one; resolves with the report, or rejects with the run's failure.
   */
  async run(name: string, work?: () => Promise<JobReport> | JobReport): Promise<JobReport> {
    const job = this.jobs.get(name);
    if (!job) throw new Error(`no housekeeping job ${name}`);
    for (let inFlight = this.running.get(name); inFlight; inFlight = this.running.get(name)) await inFlight.catch(() => undefined);
    return this.execute(job, work ?? job.run);
  }

  private execute(job: HousekeepingJob, work: () => Promise<JobReport> | JobReport): Promise<JobReport> {
    if (this.stopped) return Promise.reject(new HousekeepingStopped('housekeeping has stopped: the service is shutting down'));
    const started = Date.now();
    const run = (async () => {
      let report: JobReport;
      try {
        report = await work();
      } catch (err) {
        this.runs.inc({ job: job.name, outcome: 'failed' });
        this.logger.warn(`housekeeping ${job.name} failed: ${(err as Error).message}`);
        throw err;
      }
      this.record(job.name, report, Date.now() - started);
      return report;
    })();
    this.running.set(job.name, run);
    void run.catch(() => undefined).finally(() => {
      if (this.running.get(job.name) === run) this.running.delete(job.name);
    });
    return run;
  }

  private record(name: string, report: JobReport, ms: number): void {
    const removed = Object.entries(report.removed ?? {});
    for (const [item, n] of removed) this.removed.inc({ job: name, item }, n);
    const what = removed.filter(([, n]) => n > 0).map(([item, n]) => `${n} ${item}`).join(', ');
    const line = `housekeeping ${name}: ${what ? `removed ${what}` : 'removed nothing'}${report.detail ? `; ${report.detail}` : ''} (${ms} ms)`;
    if (report.error) {
      this.runs.inc({ job: name, outcome: 'failed' });
      this.logger.warn(`${line}; stopped: ${report.error}`);
      return;
    }
    this.runs.inc({ job: name, outcome: 'ok' });
    this.lastSuccess.set({ job: name }, Date.now() / 1000);
    // A quiet run (every minute, nothing to do) would flood the log at info.
    if (what || report.detail) this.logger.info(line);
    else this.logger.debug(line);
  }

  /** Ends every schedule and waits (up to `graceMs`) for the runs in flight, so their store is not closed under them. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    for (const schedule of this.schedules.splice(0)) await schedule.destroy();
    const runs = [...this.running.values()].map((run) => run.then(() => undefined, () => undefined));
    if ((await within(Promise.all(runs), graceMs)) === undefined && runs.length > 0) {
      this.logger.warn(`housekeeping: ${[...this.running.keys()].join(', ')} still running after ${graceMs} ms; stopping anyway`);
    }
  }
}

const attached = new WeakMap<Service, Housekeeping>();

/**
 * Adds housekeeping to a service's options: the jobs (or a function of the service that makes them)
 * start with it, and stop, runs finished, before its own onStop.
 */
export function withHousekeeping(options: StartServiceOptions, jobs: HousekeepingJob[] | ((svc: Service) => HousekeepingJob[])): StartServiceOptions {
  let housekeeping: Housekeeping | undefined;
  return {
    ...options,
    setup: (svc) => {
      options.setup?.(svc);
      housekeeping = new Housekeeping(svc.logger, svc.metrics);
      attached.set(svc, housekeeping);
      for (const job of typeof jobs === 'function' ? jobs(svc) : jobs) housekeeping.add(job);
      svc.logger.info(`housekeeping: ${housekeeping.describe() || 'no jobs'}`);
    },
    onStop: async () => {
      await housekeeping?.stop();
      await options.onStop?.();
    },
  };
}

/** The service's housekeeping (for routes that run a job now), if it was started withHousekeeping. */
export function housekeepingOf(svc: Service): Housekeeping | undefined {
  return attached.get(svc);
}
