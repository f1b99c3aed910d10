/**
 * Decode, op, encode: the CPU work of one task, run in a worker thread (see thread.ts), with either
 * codec (imageservice/codec.ts).
 *
 * Every PNG kind is accepted: grey, grey+alpha, RGB, RGBA and palette, with or without tRNS, at 1, 2,
 * 4, 8 and 16 bits, interlaced or not. The output has the input's size, keeps its alpha, and is
 * 16-bit when the input was (so nothing is rounded away). It is grey (colour type 0/4) when the
 * input was grey or the op is grayscale, colour (2/6) otherwise, with an alpha channel exactly when
 * the input had alpha (a channel or tRNS).
 */
import { assertPixelLimit, assertPlausibleData, readPngHeader, summariseChunks, PngError } from '../png.ts';
import { opOnPixels, type Op } from '../ops.ts';
import { ImageDecodeError, colorTypeOf, type Codec, type PngSource } from '../codec.ts';

export { ImageDecodeError };

/** The master's default: a worker refuses what the master would have refused. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

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

/**
 * Everything known before a pixel is decoded: the header (too many pixels is refused here) and
 * the chunks (too little image data for the claimed size is refused here), so neither codec
 * allocates memory for a decoding bomb.
 */
export function inspect(input: Buffer, maxPixels: number): PngSource {
  try {
    const header = readPngHeader(input);
    assertPixelLimit(header, maxPixels);
    const chunks = summariseChunks(input);
    assertPlausibleData(header, chunks.dataBytes);
    return { header, chunks, maxPixels };
  } catch (err) {
    if (err instanceof PngError) throw new ImageDecodeError(`the image cannot be decoded: ${err.message}`);
    throw err;
  }
}

/** The whole task. Throws ImageDecodeError when the input is not a PNG this pipeline can decode. */
export async function transformPng(input: Buffer, op: Op, codec: Codec, maxPixels = DEFAULT_MAX_PIXELS): Promise<TransformResult> {
  const t0 = performance.now();
  const source = inspect(input, maxPixels);
  const image = await codec.decode(input, source);
  const t1 = performance.now();
  const pixels = opOnPixels(op, image);
  const t2 = performance.now();
  const png = await codec.encode({ ...image, ...pixels });
  const t3 = performance.now();
  return {
    png,
    width: image.width,
    height: image.height,
    colorType: colorTypeOf(pixels.channels),
    bitDepth: pixels.depth,
    decodeMs: t1 - t0,
    opMs: t2 - t1,
    encodeMs: t3 - t2,
  };
}
