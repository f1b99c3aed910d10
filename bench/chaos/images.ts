/**
 * The chaos run's images: seeded, mixed sizes (64x64 to 512x384), RGB and RGBA, every op; and the
 * pixel-exact check of a result against the op applied (imageservice/ops.ts) to the decoded input.
 */
import { PNG } from 'pngjs';
import { applyOp, OPS, type Op } from '../../imageservice/ops.ts';

export const SIZES: [number, number][] = [
  [64, 64],
  [100, 75],
  [128, 128],
  [200, 150],
  [256, 192],
  [320, 240],
  [400, 300],
  [512, 384],
];

export interface ChaosImage {
  index: number;
  op: Op;
  width: number;
  height: number;
  png: Buffer;
}

/** A small deterministic PRNG (mulberry32), so a seed gives the same run again. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function makeImage(index: number, seed: number): ChaosImage {
  const random = seededRandom(seed * 100_003 + index);
  const [width, height] = SIZES[Math.floor(random() * SIZES.length)];
  const op = OPS[index % OPS.length];
  const alpha = index % 3 === 0;
  const data = Buffer.alloc(width * height * 4);
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v | 0);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = clamp((x / width) * 200 + random() * 55);
      data[i + 1] = clamp((y / height) * 200 + random() * 55);
      data[i + 2] = clamp(((x + y) / (width + height)) * 200 + random() * 55);
      data[i + 3] = alpha ? clamp(random() * 256) : 255;
    }
  }
  const png = PNG.sync.write({ width, height, data } as unknown as PNG, { colorType: alpha ? 6 : 2, inputHasAlpha: true });
  return { index, op, width, height, png };
}

/** undefined when the result is the op applied to the input, pixel for pixel; else what differs. */
export function resultMismatch(image: ChaosImage, result: Buffer): string | undefined {
  const input = PNG.sync.read(image.png);
  let output;
  try {
    output = PNG.sync.read(result);
  } catch (err) {
    return `result does not decode: ${(err as Error).message}`;
  }
  if (output.width !== input.width || output.height !== input.height) return `size ${output.width}x${output.height}, expected ${input.width}x${input.height}`;
  const expected = Buffer.from(input.data);
  applyOp(image.op, expected, 255);
  if (expected.equals(output.data)) return undefined;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== output.data[i]) {
      const px = i >> 2;
      return `pixel (${px % image.width},${Math.floor(px / image.width)}) channel ${i & 3} is ${output.data[i]}, expected ${expected[i]}`;
    }
  }
  return 'data differs';
}
