/**
 * The pngjs codec: portable JavaScript, the reference the native codec is tested against. pngjs
 * decodes to RGBA (low bit depths scaled to 8 bits, 16 bits kept, tRNS applied, pixels that tRNS
 * makes transparent set to (0, 0, 0, 0)); the samples are then packed into the image's own layout.
 */
import zlib from 'node:zlib';
import { once } from 'node:events';
import { PNG } from 'pngjs';
import { filteredSize, imageDataParts } from './png.ts';
import type { Samples } from './ops.ts';
import { ImageDecodeError, colorTypeOf, layoutOf, type Codec, type PngjsEncoder, type PngSource, type RawImage } from './codec.ts';

/**
 * Measured on photo-like 1024x768 images (bench/images.ts): the Sub filter with zlib level 1 and
 * Huffman coding only encodes about 4x faster than pngjs's default (all five filters per row,
 * level 9), within 4 % of its size. Lossless either way.
 */
export const PNGJS_ENCODER: PngjsEncoder = { kind: 'pngjs', deflateLevel: 1, deflateStrategy: 2, filterType: 1 };

/**
 * Keeps `channels` of every RGBA pixel: 4 as is, 3 RGB, 2 grey+alpha (R, A), 1 grey (R). Packed in
 * place (every write lands at or before the sample it reads), so no second copy of the pixels is
 * made: the result is a view of the start of `rgba`'s own memory.
 */
function pack(rgba: Samples, channels: 1 | 2 | 3 | 4): Samples {
  if (channels === 4) return rgba;
  let o = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    if (channels === 3) {
      rgba[o++] = rgba[i];
      rgba[o++] = rgba[i + 1];
      rgba[o++] = rgba[i + 2];
    } else {
      rgba[o++] = rgba[i];
      if (channels === 2) rgba[o++] = rgba[i + 3];
    }
  }
  return rgba.subarray(0, o);
}

/** Inflates the image data without keeping it, and gives its length: a broken stream, or one longer than `bound`, throws. */
async function inflatedLength(png: Buffer, bound: number): Promise<number> {
  const inflate = zlib.createInflate({ chunkSize: 256 * 1024 });
  let length = 0;
  inflate.on('data', (part: Buffer) => {
    length += part.length;
    if (length > bound) inflate.destroy(new Error(`the image data inflates to more than the ${bound} bytes its header allows`));
  });
  const ended = once(inflate, 'end');
  for (const part of imageDataParts(png)) inflate.write(part);
  inflate.end();
  await ended;
  return length;
}

export async function decodePngjs(png: Buffer, { header, chunks }: PngSource): Promise<RawImage> {
  let data: Buffer | Uint16Array;
  try {
    // pngjs's own synchronous inflate does not report a broken zlib stream: it hands back whatever
    // was in its uninitialised buffer. So the stream is inflated once here (streaming, nothing
    // kept), where errors surface, bounded by the largest size the header allows (8 bytes a pixel,
    // plus filter and pass bytes), and checked to hold every row before pngjs allocates any pixels.
    const expected = filteredSize(header);
    const bound = Math.max(expected, (header.width * 8 + 1) * header.height + 8 * (header.height + 8));
    const inflated = await inflatedLength(png, bound);
    if (inflated < expected) throw new Error(`the image data inflates to ${inflated} bytes, the header needs ${expected}`);
    // The master checked every chunk's CRC when it accepted the upload; checking again in JS costs ~5 % of a transform.
    data = PNG.sync.read(png, { skipRescale: header.bitDepth === 16, checkCRC: false }).data as Buffer | Uint16Array;
  } catch (err) {
    throw new ImageDecodeError(`the image cannot be decoded: ${(err as Error).message}`);
  }
  const { channels, depth } = layoutOf(header, chunks.trns);
  let rgba: Samples = data;
  if (depth === 16 && !(rgba instanceof Uint16Array)) rgba = new Uint16Array(rgba.buffer, rgba.byteOffset, rgba.byteLength / 2);
  return { width: header.width, height: header.height, channels, depth, samples: pack(rgba, channels), gamma: chunks.gamma };
}

export function encodePngjs(image: RawImage, encoder: PngjsEncoder = PNGJS_ENCODER): Buffer {
  const colorType = colorTypeOf(image.channels);
  const { samples } = image;
  // pngjs reads 16-bit input through `new Uint16Array(data.buffer)`, by index from the start: hand it
  // a buffer whose samples start at 0 (what follows them, as after pack(), is never read).
  const data =
    samples instanceof Uint16Array
      ? Buffer.from(samples.byteOffset === 0 ? samples.buffer : samples.slice().buffer)
      : Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  // pngjs writes gAMA as floor(gamma × 100000): the half keeps the stored value exact.
  const gamma = image.gamma === undefined ? undefined : (image.gamma + 0.5) / 100000;
  return PNG.sync.write({ width: image.width, height: image.height, data, gamma } as unknown as PNG, {
    colorType,
    inputColorType: colorType,
    inputHasAlpha: image.channels === 2 || image.channels === 4,
    bitDepth: image.depth,
    deflateLevel: encoder.deflateLevel,
    deflateStrategy: encoder.deflateStrategy,
    filterType: encoder.filterType,
  });
}

export function pngjsCodec(encoder: PngjsEncoder | { kind: string } = PNGJS_ENCODER): Codec {
  if (encoder.kind !== 'pngjs') throw new Error(`the pngjs codec encodes with pngjs, not ${encoder.kind}`);
  const settings = encoder as PngjsEncoder;
  return {
    name: 'pngjs',
    encoder: settings,
    decode: decodePngjs,
    encode: async (image) => encodePngjs(image, settings),
  };
}
