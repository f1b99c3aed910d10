/** The piscina worker-thread entry: one transform per call (the input's bytes and the output's are transferred, not copied). */
import { Piscina, transferableSymbol, valueSymbol } from 'piscina';
import { transformPng, ImageDecodeError } from './transform.ts';
import { createCodec } from '../codecs.ts';
import type { Codec, CodecName, EncoderSettings } from '../codec.ts';
import type { Op } from '../ops.ts';

export interface ThreadTask {
  png: Uint8Array;
  op: Op;
  codec: CodecName;
  encoder?: EncoderSettings;
  maxPixels: number;
}

export type ThreadResult =
  | { ok: true; png: Uint8Array; width: number; height: number; decodeMs: number; opMs: number; encodeMs: number }
  | { ok: false; retryable: boolean; error: string };

/** One codec per name and settings in this thread, made on first use. */
const codecs = new Map<string, Codec>();

function codecFor(task: ThreadTask): Codec {
  const key = `${task.codec} ${JSON.stringify(task.encoder ?? null)}`;
  let codec = codecs.get(key);
  if (!codec) codecs.set(key, (codec = createCodec(task.codec, task.encoder)));
  return codec;
}

export default async function transformInThread(task: ThreadTask): Promise<ThreadResult> {
  try {
    const input = Buffer.from(task.png.buffer, task.png.byteOffset, task.png.byteLength);
    const { png, width, height, decodeMs, opMs, encodeMs } = await transformPng(input, task.op, codecFor(task), task.maxPixels);
    // An output that owns its whole ArrayBuffer moves to the caller; a small one from Node's pool is copied.
    const owned = png.byteOffset === 0 && png.byteLength === png.buffer.byteLength ? png : Buffer.from(png);
    const result: ThreadResult = { ok: true, png: owned, width, height, decodeMs, opMs, encodeMs };
    return Piscina.move({ [transferableSymbol]: [owned.buffer], [valueSymbol]: result } as never) as unknown as ThreadResult;
  } catch (err) {
    if (err instanceof ImageDecodeError) return { ok: false, retryable: false, error: err.message };
    return { ok: false, retryable: true, error: `transform failed: ${(err as Error).message}` };
  }
}
