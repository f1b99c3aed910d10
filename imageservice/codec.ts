/**
 * A transform's codec: how PNG bytes become raw pixels (in the image's own layout) and how pixels
 * become PNG bytes again. `sharp` (libvips, native) is the default; `pngjs` (JavaScript) is the
 * portable one, the fallback when sharp can't load, and the tests' oracle. Both honour the same
 * output rules (README, "The image pipeline"): same size, 16 bits kept, alpha kept, grey stays grey.
 */
import type { Pixels } from './ops.ts';
import type { PngChunkSummary, PngHeader } from './png.ts';

export const CODECS = ['sharp', 'pngjs'] as const;
export type CodecName = (typeof CODECS)[number];
export const DEFAULT_CODEC: CodecName = 'sharp';

/** Raw pixels: straight (not premultiplied) alpha, 16-bit samples in host byte order. */
export interface RawImage extends Pixels {
  width: number;
  height: number;
  /** The input's gAMA value (gamma × 100000), carried to the output unchanged. */
  gamma?: number;
}

/** What a decoder is told about its input, read before any pixel is decoded. */
export interface PngSource {
  header: PngHeader;
  chunks: PngChunkSummary;
  maxPixels: number;
}

/** pngjs's encoder: its own options (the portable path). */
export interface PngjsEncoder {
  kind: 'pngjs';
  /** zlib level 0-9. */
  deflateLevel: number;
  /** zlib strategy (0 default, 1 filtered, 2 huffman only, 3 RLE). */
  deflateStrategy: number;
  /** PNG row filter 0-4 (None, Sub, Up, Average, Paeth), or -1 to try all five per row. */
  filterType: number;
}

/** libvips's PNG writer (through sharp), with the settings sharp exposes. */
export interface LibvipsEncoder {
  kind: 'libvips';
  compressionLevel: number;
  /** false: no row filter; true: libpng picks one of the five per row. */
  adaptiveFiltering: boolean;
}

/** Rows filtered in JavaScript, deflated by node's zlib in one native call (codecZlib.ts). */
export interface ZlibEncoder {
  kind: 'zlib';
  level: number;
  strategy: number;
  /** 0 None, 1 Sub, 2 Up. */
  filter: 0 | 1 | 2;
  /** zlib memLevel 1-9 (default 8); 9 means larger blocks, so fewer Huffman trees to build. */
  memLevel?: number;
}

export type EncoderSettings = PngjsEncoder | LibvipsEncoder | ZlibEncoder;

export interface Codec {
  readonly name: CodecName;
  readonly encoder: EncoderSettings;
  decode(png: Buffer, source: PngSource): Promise<RawImage>;
  encode(image: RawImage): Promise<Buffer>;
}

/** The image can't be processed, whatever we retry: a decode failure. */
export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageDecodeError';
  }
}

/** The layout a decoder must produce for a header: grey or colour, with alpha when the PNG has it (a channel or tRNS). */
export function layoutOf(header: PngHeader, trns: boolean): { channels: 1 | 2 | 3 | 4; depth: 8 | 16 } {
  const grey = header.colorType === 0 || header.colorType === 4;
  const alpha = header.colorType === 4 || header.colorType === 6 || trns;
  return { channels: grey ? (alpha ? 2 : 1) : alpha ? 4 : 3, depth: header.bitDepth === 16 ? 16 : 8 };
}

/** The PNG colour type of a layout (0 grey, 4 grey+alpha, 2 RGB, 6 RGBA). */
export function colorTypeOf(channels: 1 | 2 | 3 | 4): 0 | 2 | 4 | 6 {
  return ([0, 0, 4, 2, 6] as const)[channels];
}
