/** The worker threads that decode, transform and encode, so a worker's event loop never blocks on pixels. */
import os from 'node:os';
import { Piscina } from 'piscina';
import type { Op } from '../ops.ts';
import { DEFAULT_CODEC, type CodecName, type EncoderSettings } from '../codec.ts';
import { DEFAULT_MAX_PIXELS } from './transform.ts';
import type { ThreadResult } from './thread.ts';

export interface TransformPoolOptions {
  threads?: number;
  /** Which codec the threads use (resolveCodec in codec.ts says whether sharp can load). */
  codec?: CodecName;
  /** The codec's encoder settings (the codec's own default when absent). */
  encoder?: EncoderSettings;
  /** Images with more pixels are refused before they are decoded. */
  maxPixels?: number;
}

export class TransformPool {
  private readonly piscina: Piscina;
  readonly threads: number;
  readonly codec: CodecName;

  constructor(private readonly options: TransformPoolOptions = {}) {
    this.threads = Math.max(1, options.threads ?? os.availableParallelism());
    this.codec = options.codec ?? DEFAULT_CODEC;
    this.piscina = new Piscina({
      // Compiled (dist/), the thread is JavaScript too.
      filename: new URL(import.meta.url.endsWith('.js') ? './thread.js' : './thread.ts', import.meta.url).href,
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
    const task = { png: owned, op, codec: this.codec, encoder: this.options.encoder, maxPixels: this.options.maxPixels ?? DEFAULT_MAX_PIXELS };
    return (await this.piscina.run(task, { transferList: [owned.buffer as ArrayBuffer] })) as ThreadResult;
  }

  get queued(): number {
    return this.piscina.queueSize;
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
