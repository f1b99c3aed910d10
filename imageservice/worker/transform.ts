/**
 * Decode, op, encode: the CPU work of one task, run in a worker thread (see thread.ts).
 *
 * Every PNG kind pngjs decodes is accepted: grey, grey+alpha, RGB, RGBA and palette, with or
 * without tRNS, at 1, 2, 4, 8 and 16 bits, interlaced or not. The output has the input's size,
 * keeps its alpha, and is 16-bit when the input was (so nothing is rounded away). It is grey
 * (colour type 0/4) when the input was grey or the op is grayscale, colour (2/6) otherwise, with
 * an alpha channel exactly when the input had alpha (a channel or tRNS).
 */
import zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { imageData } from '../png.ts';
import { applyOp, type Op, type Samples } from '../ops.ts';

export interface EncoderOptions {
  /** zlib level 0-9. */
  deflateLevel: number;
  /** zlib strategy (0 default, 1 filtered, 2 huffman only, 3 RLE). */
  deflateStrategy: number;
  /** PNG row filter 0-4 (None, Sub, Up, Average, Paeth), or -1 to try all five per row. */
  filterType: number;
}

/**
 * Measured on photo-like 1024x768 images (bench/images.ts): the Sub filter with zlib level 1 and
 * Huffman coding only encodes about 4x faster than pngjs's default (all five filters per row,
 * level 9) and its output is within 4 % of the default's size (noise doesn't compress, and after
 * the Sub filter there are few repeats for LZ77 to find). Huffman-only deflates in ~70 % of the RLE
 * strategy's time, at the same size. Lossless either way.
 */
export const DEFAULT_ENCODER: EncoderOptions = { deflateLevel: 1, deflateStrategy: 2, filterType: 1 };

export interface TransformResult {
  png: Buffer;
  width: number;
  height: number;
  colorType: number;
  bitDepth: 8 | 16;
  decodeMs: number;
  opMs: number;
  encodeMs: number;
}

/** The image can't be processed, whatever we retry: a decode failure. */
export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageDecodeError';
  }
}

interface Decoded {
  width: number;
  height: number;
  rgba: Samples;
  depth: 8 | 16;
  color: boolean;
  alpha: boolean;
  gamma: number;
}

export function decodePng(png: Buffer): Decoded {
  let meta: ReturnType<typeof PNG.sync.read> & { depth?: number; color?: boolean; alpha?: boolean; colorType?: number };
  let sourceDepth: number;
  try {
    // 16-bit samples stay 16-bit (skipRescale); lower depths are scaled to 8 bits below.
    const head = png.length >= 26 ? png[24] : 8;
    // pngjs's own synchronous inflate does not report a broken zlib stream: it hands back whatever
    // was in its uninitialised buffer. So the stream is inflated once here, where errors surface,
    // and bounded by the largest size the header allows (8 bytes a pixel, plus filter and pass bytes).
    const width = png.length >= 24 ? png.readUInt32BE(16) : 0;
    const height = png.length >= 24 ? png.readUInt32BE(20) : 0;
    zlib.inflateSync(imageData(png), { maxOutputLength: Math.max(1, (width * 8 + 1) * height + 8 * (height + 8)) });
    // The master checked every chunk's CRC when it accepted the upload; checking again in JS costs ~5 % of a transform.
    meta = PNG.sync.read(png, { skipRescale: head === 16, checkCRC: false }) as typeof meta;
    sourceDepth = meta.depth ?? 8;
  } catch (err) {
    throw new ImageDecodeError(`the image cannot be decoded: ${(err as Error).message}`);
  }
  const { width, height } = meta;
  let rgba: Samples = meta.data;
  let depth: 8 | 16 = 8;
  if (sourceDepth === 16) {
    depth = 16;
    if (!(rgba instanceof Uint16Array)) rgba = new Uint16Array(rgba.buffer, rgba.byteOffset, rgba.byteLength / 2);
  }
  return { width, height, rgba, depth, color: Boolean(meta.color), alpha: Boolean(meta.alpha), gamma: meta.gamma ?? 0 };
}

/** Packs RGBA samples into the output layout (1-4 channels). */
function pack(rgba: Samples, channels: 1 | 2 | 3 | 4): Samples {
  if (channels === 4) return rgba;
  const pixels = rgba.length / 4;
  const out = rgba instanceof Uint16Array ? new Uint16Array(pixels * channels) : new Uint8Array(pixels * channels);
  for (let p = 0, o = 0, i = 0; p < pixels; p++, i += 4) {
    if (channels === 3) {
      out[o++] = rgba[i];
      out[o++] = rgba[i + 1];
      out[o++] = rgba[i + 2];
    } else {
      out[o++] = rgba[i];
      if (channels === 2) out[o++] = rgba[i + 3];
    }
  }
  return out;
}

export function encodePng(
  image: { width: number; height: number; rgba: Samples; depth: 8 | 16; grey: boolean; alpha: boolean; gamma?: number },
  encoder: EncoderOptions = DEFAULT_ENCODER,
): { png: Buffer; colorType: number } {
  const colorType = image.grey ? (image.alpha ? 4 : 0) : image.alpha ? 6 : 2;
  const channels = ([1, 0, 3, 0, 2, 0, 4] as const)[colorType] as 1 | 2 | 3 | 4;
  const packed = pack(image.rgba, channels);
  // pngjs reads 16-bit input through `new Uint16Array(data.buffer)`: hand it a buffer that starts at 0.
  const data =
    packed instanceof Uint16Array
      ? Buffer.from(packed.byteOffset === 0 && packed.buffer.byteLength === packed.byteLength ? packed.buffer : packed.slice().buffer)
      : Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const png = PNG.sync.write({ width: image.width, height: image.height, data, gamma: image.gamma } as unknown as PNG, {
    colorType: colorType as 0 | 2 | 4 | 6,
    inputColorType: colorType as 0 | 2 | 4 | 6,
    inputHasAlpha: image.alpha,
    bitDepth: image.depth,
    deflateLevel: encoder.deflateLevel,
    deflateStrategy: encoder.deflateStrategy,
    filterType: encoder.filterType,
  });
  return { png, colorType };
}

/** The whole task: decode, apply the op, encode. Throws ImageDecodeError when the input is not a decodable PNG. */
export function transformPng(input: Buffer, op: Op, encoder: EncoderOptions = DEFAULT_ENCODER): TransformResult {
  const t0 = performance.now();
  const image = decodePng(input);
  const t1 = performance.now();
  applyOp(op, image.rgba, image.depth === 16 ? 65535 : 255);
  const t2 = performance.now();
  const grey = !image.color || op === 'grayscale';
  const { png, colorType } = encodePng({ ...image, grey }, encoder);
  const t3 = performance.now();
  return { png, width: image.width, height: image.height, colorType, bitDepth: image.depth, decodeMs: t1 - t0, opMs: t2 - t1, encodeMs: t3 - t2 };
}
