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

/** Applies an op in place to RGBA samples (four per pixel). */
export function applyOp(op: Op, rgba: Samples, max: number): void {
  const n = rgba.length;
  switch (op) {
    case 'swap-rg':
      for (let i = 0; i < n; i += 4) {
        const r = rgba[i];
        rgba[i] = rgba[i + 1];
        rgba[i + 1] = r;
      }
      return;
    case 'swap-rb':
      for (let i = 0; i < n; i += 4) {
        const r = rgba[i];
        rgba[i] = rgba[i + 2];
        rgba[i + 2] = r;
      }
      return;
    case 'invert':
      for (let i = 0; i < n; i += 4) {
        rgba[i] = max - rgba[i];
        rgba[i + 1] = max - rgba[i + 1];
        rgba[i + 2] = max - rgba[i + 2];
      }
      return;
    case 'grayscale':
      for (let i = 0; i < n; i += 4) {
        const y = luma(rgba[i], rgba[i + 1], rgba[i + 2]);
        rgba[i] = y;
        rgba[i + 1] = y;
        rgba[i + 2] = y;
      }
      return;
  }
}

/** The op applied to one RGBA pixel (for tests and for people reading the definition). */
export function opPixel(op: Op, [r, g, b, a]: readonly number[], max: number): [number, number, number, number] {
  const px = new Float64Array([r, g, b, a]);
  applyOp(op, px as unknown as Uint16Array, max);
  return [px[0], px[1], px[2], px[3]];
}
