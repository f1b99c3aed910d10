/** The piscina worker-thread entry: one transform per call (the input's bytes are transferred, not copied). */
import { transformPng, ImageDecodeError, type EncoderOptions } from './transform.ts';
import type { Op } from '../ops.ts';

export interface ThreadTask {
  png: Uint8Array;
  op: Op;
  encoder?: EncoderOptions;
}

export type ThreadResult =
  | { ok: true; png: Uint8Array; width: number; height: number; decodeMs: number; opMs: number; encodeMs: number }
  | { ok: false; retryable: boolean; error: string };

export default function transformInThread(task: ThreadTask): ThreadResult {
  try {
    const input = Buffer.from(task.png.buffer, task.png.byteOffset, task.png.byteLength);
    const { png, width, height, decodeMs, opMs, encodeMs } = transformPng(input, task.op, task.encoder);
    return { ok: true, png, width, height, decodeMs, opMs, encodeMs };
  } catch (err) {
    if (err instanceof ImageDecodeError) return { ok: false, retryable: false, error: err.message };
    return { ok: false, retryable: true, error: `transform failed: ${(err as Error).message}` };
  }
}
