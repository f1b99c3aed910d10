import os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { envInt, envString, parseWholeNumber, serviceConfig, type ServiceConfig } from '../../shared/config.ts';
import { CODECS, DEFAULT_CODEC, type CodecName, type EncoderSettings } from '../codec.ts';
import { DEFAULT_MAX_PIXELS } from './transform.ts';

export const WORKER_SERVICE = 'imageworker';
/** The worker has no API, only /metrics, so any free port does. */
export const WORKER_DEFAULT_PORT = 0;

/** The worker's settings (see README, "The image pipeline"). */
export interface WorkerOptions {
  config?: Partial<ServiceConfig>;
  /** Tasks transformed at once (threads in the pool). Default: the number of cores. */
  concurrency?: number;
  /**
   * Tasks claimed and downloaded ahead, beyond one per thread, so that a thread that finishes
   * starts its next image at once instead of waiting while its slot uploads, completes, claims and
   * downloads. Default 1. A prefetched task waits at most one transform, under a renewed lease.
   */
  prefetch?: number;
  /** How long one claim long-polls the master. */
  claimWaitMs?: number;
  /** On shutdown, how long held tasks may take to finish before they are released. */
  shutdownGraceMs?: number;
  /** The codec asked for (IMAGE_CODEC); sharp falls back to pngjs, with a warning, where it can't load. */
  codec?: CodecName;
  encoder?: EncoderSettings;
  /** Images with more pixels are failed before they are decoded (the master's MAX_PIXELS). */
  maxPixels?: number;
  /** The CPU priority of the worker's threads (nice, 0-19): transforms yield the cores to the services that answer uploads. */
  nice?: number;
}

export const workerDefaults = { claimWaitMs: 20_000, shutdownGraceMs: 20_000, prefetch: 1, nice: 10 };

function codecFrom(env: NodeJS.ProcessEnv): CodecName {
  const name = envString('IMAGE_CODEC', DEFAULT_CODEC, env);
  if (!(CODECS as readonly string[]).includes(name)) throw new Error(`IMAGE_CODEC must be one of ${CODECS.join(', ')}, got "${name}"`);
  return name as CodecName;
}

function niceFrom(env: NodeJS.ProcessEnv): number {
  const nice = envInt('WORKER_NICE', workerDefaults.nice, env);
  if (nice > 19) throw new Error(`WORKER_NICE must be a whole number from 0 to 19, got "${env.WORKER_NICE}"`);
  return nice;
}

/** The worker's settings from the environment. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): WorkerOptions {
  return {
    config: serviceConfig(WORKER_SERVICE, WORKER_DEFAULT_PORT, env),
    concurrency: envInt('CONCURRENCY', os.availableParallelism(), env),
    prefetch: envInt('PREFETCH', workerDefaults.prefetch, env),
    codec: codecFrom(env),
    maxPixels: envInt('MAX_PIXELS', DEFAULT_MAX_PIXELS, env),
    claimWaitMs: envInt('CLAIM_WAIT_MS', workerDefaults.claimWaitMs, env),
    shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', workerDefaults.shutdownGraceMs, env),
    nice: niceFrom(env),
  };
}

/** A commander parser for whole numbers of at least `min`. */
const wholeNumberFlag = (min: number) => (value: string) => {
  const n = parseWholeNumber(value, min);
  if (n === undefined) throw new InvalidArgumentError(min === 1 ? 'must be a positive integer' : `must be a whole number, ${min} or more`);
  return n;
};

const niceFlag = (value: string) => {
  const n = parseWholeNumber(value, 0);
  if (n === undefined || n > 19) throw new InvalidArgumentError('must be a whole number from 0 to 19');
  return n;
};

/** The worker's settings: its flags (--concurrency, --prefetch, --codec) over the environment's. */
export function fromCommandLine(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): WorkerOptions {
  const base = fromEnv(env);
  const flags = new Command('worker')
    .description('image worker: claims tasks from the master and transforms them')
    .option('-c, --concurrency <n>', 'tasks transformed at once (threads)', wholeNumberFlag(1), base.concurrency)
    .option('--prefetch <n>', 'tasks claimed and downloaded ahead while every thread is busy', wholeNumberFlag(0), base.prefetch)
    .option('--nice <n>', 'CPU priority of the transforms, 0-19 (higher yields more to the other services)', niceFlag, base.nice)
    .addOption(new Option('--codec <name>', 'PNG codec (pngjs is the portable one; env IMAGE_CODEC)').choices(CODECS).default(base.codec))
    .parse(argv)
    .opts<{ concurrency: number; prefetch: number; nice: number; codec: CodecName }>();
  return { ...base, ...flags };
}
