/**
 * The native codec: sharp (libvips) decodes to raw samples in the image's own colour space, so
 * libvips converts nothing (no gamma from gAMA, no ICC profile, no 16 to 8 bits, no premultiplied
 * alpha), and the result is pixel for pixel what pngjs decodes (codec.test.ts proves it for every
 * PNG kind). The encoder is the zlib-direct one (codecZlib.ts) by default, or libvips's PNG writer.
 */
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import type Sharp from 'sharp';
import { ImageDecodeError, colorTypeOf, layoutOf, type Codec, type EncoderSettings, type LibvipsEncoder, type PngSource, type RawImage } from './codec.ts';
import { encodeZlib } from './codecZlib.ts';
import type { Samples } from './ops.ts';
import { PNG_SIGNATURE } from './png.ts';

let sharpModule: typeof Sharp | undefined;

/** sharp, loaded on first use, so that a platform without its binary still runs the pngjs codec. */
export function loadSharp(): typeof Sharp {
  if (!sharpModule) {
    sharpModule = createRequire(import.meta.url)('sharp') as typeof Sharp;
    // Each image is one request: libvips's operation cache would only hold memory. One libvips
    // thread per image, because the worker already runs one image per core.
    sharpModule.cache(false);
    sharpModule.concurrency(1);
  }
  return sharpModule;
}

/**
 * The default, by the figures in docs/benchmarks.md: Up filter, zlib level 1 with Huffman coding
 * only and memLevel 9.
 */
export const SHARP_ENCODER: EncoderSettings = { kind: 'zlib', level: 1, strategy: 2, filter: 2, memLevel: 9 };

type Space = 'b-w' | 'grey16' | 'srgb' | 'rgb16';

/** The colour space libvips already reads a PNG in: asking for it makes the conversion a no-op. */
function ownSpace(grey: boolean, depth: 8 | 16, alpha: boolean): Space {
  if (depth === 16) return grey ? 'grey16' : 'rgb16';
  // sharp's raw output keeps only the first band of an 8-bit grey image, so grey+alpha is read as
  // sRGB (R = G = B) and packed back to two samples below.
  return grey && !alpha ? 'b-w' : 'srgb';
}

/** Keeps samples `first` and `last` of every 4: (R, A) of grey RGBA pixels. */
function greyAlphaOf(rgba: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgba.length / 2);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 2) {
    out[o] = rgba[i];
    out[o + 1] = rgba[i + 3];
  }
  return out;
}

/** pngjs's rule for grey and RGB tRNS: the transparent colour decodes as (0, 0, 0, 0). */
function clearTransparent(samples: Samples, channels: 2 | 4): void {
  for (let i = channels - 1; i < samples.length; i += channels) {
    if (samples[i] === 0) for (let c = channels - 1; c > 0; c--) samples[i - c] = 0;
  }
}

export async function decodeSharp(png: Buffer, { header, chunks, maxPixels }: PngSource): Promise<RawImage> {
  const layout = layoutOf(header, chunks.trns);
  const grey = layout.channels < 3;
  const alpha = layout.channels === 2 || layout.channels === 4;
  let data: Buffer;
  let channels: number;
  try {
    const decoded = await loadSharp()(png, { limitInputPixels: maxPixels, ignoreIcc: true, failOn: 'error', sequentialRead: true })
      .toColourspace(ownSpace(grey, layout.depth, alpha))
      .raw({ depth: layout.depth === 16 ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    data = decoded.data;
    channels = decoded.info.channels;
  } catch (err) {
    throw new ImageDecodeError(`the image cannot be decoded: ${(err as Error).message}`);
  }
  let samples: Samples = layout.depth === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : data;
  if (grey && alpha && layout.depth === 8 && channels === 4) {
    samples = greyAlphaOf(samples as Uint8Array);
    channels = 2;
  }
  if (channels !== layout.channels) {
    throw new Error(`libvips decoded ${channels} channel(s) where the PNG header means ${layout.channels}`);
  }
  if (chunks.trns && (header.colorType === 0 || header.colorType === 2)) clearTransparent(samples, layout.channels as 2 | 4);
  return { width: header.width, height: header.height, channels: layout.channels, depth: layout.depth, samples, gamma: chunks.gamma };
}

/** Puts a gAMA chunk after IHDR (libvips writes none when metadata isn't kept). */
function withGamma(png: Buffer, gamma: number | undefined): Buffer {
  if (gamma === undefined) return png;
  const ihdrEnd = PNG_SIGNATURE.length + 25;
  const gama = Buffer.alloc(16);
  gama.writeUInt32BE(4, 0);
  gama.write('gAMA', 4, 'latin1');
  gama.writeUInt32BE(gamma, 8);
  gama.writeUInt32BE(zlib.crc32(gama.subarray(4, 12)), 12);
  return Buffer.concat([png.subarray(0, ihdrEnd), gama, png.subarray(ihdrEnd)]);
}

export async function encodeLibvips(image: RawImage, settings: LibvipsEncoder): Promise<Buffer> {
  const grey = image.channels < 3;
  // Raw input is read as B_W, GREY16, sRGB or RGB16 by its channels and sample type; saying the same
  // space again means no conversion, and a 16-bit space makes libvips write 16 bits.
  const space: Space = image.depth === 16 ? (grey ? 'grey16' : 'rgb16') : grey ? 'b-w' : 'srgb';
  const png = await loadSharp()(image.samples, { raw: { width: image.width, height: image.height, channels: image.channels }, limitInputPixels: false })
    .toColourspace(space)
    .png({ compressionLevel: settings.compressionLevel, adaptiveFiltering: settings.adaptiveFiltering, palette: false })
    .toBuffer();
  if (png[25] !== colorTypeOf(image.channels) || png[24] !== image.depth) {
    throw new Error(`libvips wrote colour type ${png[25]} at ${png[24]} bits, not ${colorTypeOf(image.channels)} at ${image.depth}`);
  }
  return withGamma(png, image.gamma);
}

export function sharpCodec(encoder: EncoderSettings = SHARP_ENCODER): Codec {
  if (encoder.kind === 'pngjs') throw new Error('the sharp codec encodes with libvips or zlib, not pngjs');
  return {
    name: 'sharp',
    encoder,
    decode: decodeSharp,
    encode: (image) => (encoder.kind === 'zlib' ? encodeZlib(image, encoder) : encodeLibvips(image, encoder)),
  };
}
