/**
 * The operations, defined on straight (not premultiplied) RGBA samples whose maximum M is 255
 * for 8-bit images and 65535 for 16-bit ones. Alpha is never touched.
 *
 * - swap-rg (default): (R, G, B, A) -> (G, R, B, A)
 * - swap-rb:           (R, G, B, A) -> (B, G, R, A)
 * - invert:            (R, G, B, A) -> (M-R, M-G, M-B, A)
 * - grayscale:         Y = floor((299 R + 587 G + 114 B + 500) / 1000), the ITU-R BT.601 luma
 *                      weights rounded half up in integers; (R, G, B, A) -> (Y, Y, Y, A)
 */
import { z } from 'zod';

export const OPS = ['swap-rg', 'swap-rb', 'grayscale', 'invert'] as const;
export type Op = (typeof OPS)[number];
export const DEFAULT_OP: Op = 'swap-rg';
export const opSchema = z.enum(OPS, { message: `must be one of ${OPS.join(', ')}` });

export type Samples = Uint8Array | Uint16Array;

/** The grey level of one pixel, as the grayscale op computes it. */
export function luma(r: number, g: number, b: number): number {
  return Math.floor((299 * r + 587 * g + 114 * b + 500) / 1000);
}

/**
 * Applies an op in place to samples of `channels` per pixel: 4 RGBA, 3 RGB, 2 grey+alpha, 1 grey.
 * On grey samples the swaps and grayscale change nothing (R = G = B), and invert inverts the grey.
 */
export function applyOp(op: Op, samples: Samples, max: number, channels: 1 | 2 | 3 | 4 = 4): void {
  const n = samples.length;
  const c = channels;
  if (c < 3) {
    if (op === 'invert') for (let i = 0; i < n; i += c) samples[i] = max - samples[i];
    return;
  }
  switch (op) {
    case 'swap-rg':
      for (let i = 0; i < n; i += c) {
        const r = samples[i];
        samples[i] = samples[i + 1];
        samples[i + 1] = r;
      }
      return;
    case 'swap-rb':
      for (let i = 0; i < n; i += c) {
        const r = samples[i];
        samples[i] = samples[i + 2];
        samples[i + 2] = r;
      }
      return;
    case 'invert':
      for (let i = 0; i < n; i += c) {
        samples[i] = max - samples[i];
        samples[i + 1] = max - samples[i + 1];
        samples[i + 2] = max - samples[i + 2];
      }
      return;
    case 'grayscale':
      for (let i = 0; i < n; i += c) {
        const y = luma(samples[i], samples[i + 1], samples[i + 2]);
        samples[i] = y;
        samples[i + 1] = y;
        samples[i + 2] = y;
      }
      return;
  }
}

/** Pixels in their own layout: `channels` samples per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA). */
export interface Pixels {
  samples: Samples;
  channels: 1 | 2 | 3 | 4;
  depth: 8 | 16;
}

/**
 * The op on pixels in their own layout. Grayscale on a colour image gives grey pixels (one sample
 * for Y, plus alpha), written straight into a buffer a third (or half) the size; every other case
 * works in place.
 */
export function opOnPixels(op: Op, pixels: Pixels): Pixels {
  const max = pixels.depth === 16 ? 65535 : 255;
  const { samples, channels } = pixels;
  if (op !== 'grayscale' || channels < 3) {
    applyOp(op, samples, max, channels);
    return pixels;
  }
  const alpha = channels === 4;
  const pixelCount = samples.length / channels;
  const out = samples instanceof Uint16Array ? new Uint16Array(pixelCount * (alpha ? 2 : 1)) : new Uint8Array(pixelCount * (alpha ? 2 : 1));
  for (let i = 0, o = 0; i < samples.length; i += channels) {
    out[o++] = luma(samples[i], samples[i + 1], samples[i + 2]);
    if (alpha) out[o++] = samples[i + 3];
  }
  return { samples: out, channels: alpha ? 2 : 1, depth: pixels.depth };
}

/** The op applied to one RGBA pixel (for tests and for people reading the definition). */
export function opPixel(op: Op, [r, g, b, a]: readonly number[], max: number): [number, number, number, number] {
  const px = new Float64Array([r, g, b, a]);
  applyOp(op, px as unknown as Uint16Array, max);
  return [px[0], px[1], px[2], px[3]];
}
