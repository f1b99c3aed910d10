/** The worker threads that decode, transform and encode, so a worker's event loop never blocks on pixels. */
import os from 'node:os';
import { Piscina } from 'piscina';
import type { Op } from '../ops.ts';
import type { EncoderOptions } from './transform.ts';
import type { ThreadResult } from './thread.ts';

export interface TransformPoolOptions {
  threads?: number;
  encoder?: EncoderOptions;
}

export class TransformPool {
  private readonly piscina: Piscina;
  readonly threads: number;

  constructor(private readonly options: TransformPoolOptions = {}) {
    this.threads = Math.max(1, options.threads ?? os.availableParallelism());
    this.piscina = new Piscina({
      filename: new URL('./thread.ts', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      // A thread takes the next image as soon as it is free; nothing waits in a second queue.
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
    });
  }

  /** Transforms one PNG; the input's bytes are moved to the thread (the caller must not reuse them). */
  async run(png: Uint8Array, op: Op): Promise<ThreadResult> {
    const owned = png.byteOffset === 0 && png.byteLength === png.buffer.byteLength ? png : png.slice();
    return (await this.piscina.run({ png: owned, op, encoder: this.options.encoder }, { transferList: [owned.buffer as ArrayBuffer] })) as ThreadResult;
  }

  get queued(): number {
    return this.piscina.queueSize;
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
