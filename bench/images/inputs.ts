/** The benchmark's seeded inputs: the photo-like RGB images and the RGBA ones used before. */
import { PNG } from 'pngjs';

/** A seeded generator of uniform [0, 1) numbers and Gaussian ones (Box-Muller). */
function randomness(seed: number) {
  let state = (seed * 2654435761) >>> 0 || 1;
  const uniform = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, gaussian };
}
const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** The inputs: opaque 8-bit RGB, a smooth gradient plus a sinusoid plus Gaussian noise of σ 6. */
export function photoRgb(width: number, height: number, seed: number): Buffer {
  const { gaussian } = randomness(seed);
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const wave = 30 * Math.sin((x + seed * 17) / 37) * Math.cos(y / 53);
      data[i++] = clamp(40 + (170 * x) / width + wave + 6 * gaussian());
      data[i++] = clamp(50 + (150 * y) / height - wave + 6 * gaussian());
      data[i++] = clamp(20 + (200 * (x + y)) / (width + height) + 6 * gaussian());
    }
  }
  return PNG.sync.write({ width, height, data } as unknown as PNG, { colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 6, filterType: 4 });
}

/** The RGBA inputs used before: gradients, a soft blob and ±10 uniform noise, opaque alpha. */
export function photoRgba(width: number, height: number, seed: number): Buffer {
  const { uniform } = randomness(seed);
  const data = Buffer.alloc(width * height * 4);
  const cx = width * (0.3 + 0.4 * uniform());
  const cy = height * (0.3 + 0.4 * uniform());
  const radius = Math.min(width, height) * 0.4;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(x - cx, y - cy) / radius;
      const blob = d < 1 ? (1 - d) * 90 : 0;
      data[i++] = clamp((x / width) * 170 + 40 + blob + (uniform() - 0.5) * 20);
      data[i++] = clamp((y / height) * 150 + 50 + blob * 0.5 + (uniform() - 0.5) * 20);
      data[i++] = clamp(((x + y) / (width + height)) * 200 + 20 - blob * 0.3 + (uniform() - 0.5) * 20);
      data[i++] = 255;
    }
  }
  return PNG.sync.write({ width, height, data } as unknown as PNG, { deflateLevel: 6, filterType: 4 });
}
