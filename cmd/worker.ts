import os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { startWorker, workerDefaults } from '../imageservice/worker/worker.ts';
import { serviceConfig, envInt } from '../shared/config.ts';
import { CODECS, DEFAULT_CODEC, type CodecName } from '../imageservice/codec.ts';
import { DEFAULT_MAX_PIXELS } from '../imageservice/worker/transform.ts';
import { runMain } from '../shared/main.ts';

/** A commander parser for whole numbers of at least `min`. */
const wholeNumber = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(min === 1 ? 'must be a positive integer' : `must be a whole number, ${min} or more`);
  return n;
};

const program = new Command('worker')
  .description('image worker: claims tasks from the master and transforms them')
  .option('-c, --concurrency <n>', 'tasks transformed at once (threads)', wholeNumber(1), envInt('CONCURRENCY', os.availableParallelism()))
  .option('--prefetch <n>', 'tasks claimed and downloaded ahead while every thread is busy', wholeNumber(0), envInt('PREFETCH', workerDefaults.prefetch))
  .addOption(new Option('--codec <name>', 'PNG codec (pngjs is the portable one)').choices(CODECS).env('IMAGE_CODEC').default(DEFAULT_CODEC))
  .parse();

await runMain('imageworker', () =>
  startWorker({
    config: serviceConfig('imageworker', 0),
    concurrency: program.opts<{ concurrency: number }>().concurrency,
    prefetch: program.opts<{ prefetch: number }>().prefetch,
    codec: program.opts<{ codec: CodecName }>().codec,
    maxPixels: envInt('MAX_PIXELS', DEFAULT_MAX_PIXELS),
    leaseTtlSeconds: envInt('LEASE_TTL_SECONDS', workerDefaults.leaseTtlSeconds),
    claimWaitMs: envInt('CLAIM_WAIT_MS', workerDefaults.claimWaitMs),
    shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', workerDefaults.shutdownGraceMs),
  }),
);
