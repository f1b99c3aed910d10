/**
 * What the master checks before it accepts an upload: the PNG signature, the header (IHDR) and
 * the chunk structure, so that a non-PNG, a truncated PNG or a huge one fails at once with its
 * reason instead of reaching a worker.
 */
import zlib from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Signature (8) + IHDR length and type (8) + IHDR data (13) + CRC (4). */
export const PNG_HEADER_BYTES = 33;

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

/** Why a body is not an acceptable PNG, with the HTTP status it deserves. */
export class PngError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    readonly code: 'not_png' | 'invalid_png' | 'truncated_png' | 'image_too_large',
    message: string,
  ) {
    super(message);
    this.name = 'PngError';
  }
}

/** The bit depths the PNG specification allows for each colour type. */
const DEPTHS_BY_COLOR_TYPE: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

const MAX_DIMENSION = 2 ** 31 - 1;

export function hasPngSignature(bytes: Uint8Array): boolean {
  if (bytes.length < PNG_SIGNATURE.length) return false;
  return Buffer.from(bytes.buffer, bytes.byteOffset, PNG_SIGNATURE.length).equals(PNG_SIGNATURE);
}

/**
 * Reads the signature and IHDR from the first 33 bytes (or fewer, when that is all there is).
 * Fewer than 8 bytes that match the signature so far count as truncated; anything else that
 * isn't the signature is "not a PNG".
 */
export function readPngHeader(bytes: Uint8Array): PngHeader {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prefix = Math.min(buf.length, PNG_SIGNATURE.length);
  if (!buf.subarray(0, prefix).equals(PNG_SIGNATURE.subarray(0, prefix)) || buf.length === 0) {
    throw new PngError(415, 'not_png', 'the body is not a PNG image (it does not start with the PNG signature)');
  }
  if (buf.length < PNG_HEADER_BYTES) {
    throw new PngError(400, 'truncated_png', `the PNG is truncated: ${buf.length} bytes, too short to hold its header`);
  }
  const length = buf.readUInt32BE(8);
  const type = buf.toString('latin1', 12, 16);
  if (type !== 'IHDR' || length !== 13) {
    throw new PngError(415, 'invalid_png', 'the PNG does not begin with a valid IHDR header chunk');
  }
  if (zlib.crc32(buf.subarray(12, 29)) !== buf.readUInt32BE(29)) {
    throw new PngError(415, 'invalid_png', 'the PNG header (IHDR) is corrupt: its checksum does not match');
  }
  const header: PngHeader = {
    width: buf.readUInt32BE(16),
    height: buf.readUInt32BE(20),
    bitDepth: buf[24],
    colorType: buf[25],
    interlaced: buf[28] === 1,
  };
  if (header.width === 0 || header.height === 0 || header.width > MAX_DIMENSION || header.height > MAX_DIMENSION) {
    throw new PngError(415, 'invalid_png', `the PNG has invalid dimensions ${header.width}x${header.height}`);
  }
  const depths = DEPTHS_BY_COLOR_TYPE[header.colorType];
  if (!depths) throw new PngError(415, 'invalid_png', `the PNG has an unknown colour type ${header.colorType}`);
  if (!depths.includes(header.bitDepth)) {
    throw new PngError(415, 'invalid_png', `the PNG has bit depth ${header.bitDepth}, which colour type ${header.colorType} does not allow`);
  }
  if (buf[26] !== 0 || buf[27] !== 0 || buf[28] > 1) {
    throw new PngError(415, 'invalid_png', 'the PNG uses an unknown compression, filter or interlace method');
  }
  return header;
}

/** Refuses images with more pixels than the limit (a 413, before any pixel is decoded). */
export function assertPixelLimit(header: PngHeader, maxPixels: number): void {
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new PngError(
      413,
      'image_too_large',
      `the image is ${header.width}x${header.height} (${(pixels / 1e6).toFixed(1)} MP), more than the limit of ${(maxPixels / 1e6).toFixed(1)} MP`,
    );
  }
}

/**
 * The chunk structure of a PNG as its bytes arrive, in pieces of any size: lengths in bounds,
 * checksums right, at least one IDAT, and IEND at the end (what follows IEND is not read). A bad
 * chunk throws as soon as its checksum is in; `end()` says whether the body stopped short.
 * The signature and header are readPngHeader's to check: the walk starts after the signature.
 */
export class PngStructureCheck {
  /** Bytes seen so far, the signature included. */
  private seen = 0;
  /** The chunk header (length and type) or checksum being gathered. */
  private readonly pending = Buffer.alloc(8);
  private pendingBytes = 0;
  private chunkStart = PNG_SIGNATURE.length;
  private chunkType = '';
  private chunkLength = 0;
  /** Data bytes of the current chunk still to come; -1 while its header is being read. */
  private dataLeft = -1;
  private crc = 0;
  private sawIdat = false;
  private done = false;

  push(bytes: Uint8Array): void {
    let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // The signature is readPngHeader's: skip whatever of it this piece holds.
    const signatureLeft = Math.max(0, PNG_SIGNATURE.length - this.seen);
    this.seen += buf.length;
    buf = buf.subarray(Math.min(signatureLeft, buf.length));
    while (buf.length > 0 && !this.done) {
      if (this.dataLeft < 0) {
        buf = this.gather(buf, 8);
        if (this.pendingBytes < 8) return;
        this.pendingBytes = 0;
        this.chunkLength = this.pending.readUInt32BE(0);
        this.chunkType = this.pending.toString('latin1', 4, 8);
        if (this.chunkLength > 2 ** 31 - 1 || !/^[A-Za-z]{4}$/.test(this.chunkType)) {
          throw new PngError(415, 'invalid_png', `the PNG has a malformed chunk at byte ${this.chunkStart}`);
        }
        this.crc = zlib.crc32(this.pending.subarray(4, 8));
        this.dataLeft = this.chunkLength;
      } else if (this.dataLeft > 0) {
        const data = buf.subarray(0, Math.min(this.dataLeft, buf.length));
        this.crc = zlib.crc32(data, this.crc);
        this.dataLeft -= data.length;
        buf = buf.subarray(data.length);
      } else {
        buf = this.gather(buf, 4);
        if (this.pendingBytes < 4) return;
        this.pendingBytes = 0;
        if (this.crc !== this.pending.readUInt32BE(0)) {
          throw new PngError(415, 'invalid_png', `the PNG is corrupt: the checksum of chunk ${this.chunkType} at byte ${this.chunkStart} does not match`);
        }
        if (this.chunkType === 'IDAT') this.sawIdat = true;
        if (this.chunkType === 'IEND') this.done = true;
        this.chunkStart += 12 + this.chunkLength;
        this.dataLeft = -1;
      }
    }
  }

  /** The body has ended: throws when it stopped before IEND or held no image data. */
  end(): void {
    if (!this.done) {
      if (this.dataLeft < 0) {
        throw new PngError(400, 'truncated_png', `the PNG is truncated: it ends after ${this.seen} bytes, before its IEND chunk`);
      }
      throw new PngError(400, 'truncated_png', `the PNG is truncated: chunk ${this.chunkType} at byte ${this.chunkStart} needs ${this.chunkLength} bytes, the body ends first`);
    }
    if (!this.sawIdat) throw new PngError(415, 'invalid_png', 'the PNG has no image data (IDAT chunk)');
  }

  /** Fills `pending` up to `size` bytes from the front of `buf`; returns the rest of `buf`. */
  private gather(buf: Buffer, size: number): Buffer {
    const take = Math.min(size - this.pendingBytes, buf.length);
    buf.copy(this.pending, this.pendingBytes, 0, take);
    this.pendingBytes += take;
    return buf.subarray(take);
  }
}

/**
 * Walks every chunk of a whole PNG (PngStructureCheck on all of it at once). A body cut short
 * anywhere is reported as truncated.
 */
export function checkPngStructure(bytes: Uint8Array): PngHeader {
  const header = readPngHeader(bytes);
  const check = new PngStructureCheck();
  check.push(bytes);
  check.end();
  return header;
}

/** The image data of a PNG: its IDAT chunks' contents (views into the file), in order. */
export function imageDataParts(bytes: Uint8Array): Buffer[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Buffer[] = [];
  let offset = PNG_SIGNATURE.length;
  while (offset + 8 <= buf.length) {
    const length = buf.readUInt32BE(offset);
    const type = buf.toString('latin1', offset + 4, offset + 8);
    if (type === 'IDAT') parts.push(buf.subarray(offset + 8, Math.min(buf.length, offset + 8 + length)));
    if (type === 'IEND') break;
    offset += 12 + length;
  }
  return parts;
}

/** The image data of a PNG: its IDAT chunks' contents, joined (the zlib stream). */
export function imageData(bytes: Uint8Array): Buffer {
  return Buffer.concat(imageDataParts(bytes));
}

/** What a decoder needs to know besides the header, from one walk over the chunk headers. */
export interface PngChunkSummary {
  /** A tRNS chunk is present (transparency for a grey, RGB or palette image). */
  trns: boolean;
  /** The gAMA chunk's stored value (gamma × 100000), when there is one. */
  gamma?: number;
  /** The bytes of image data (IDAT contents) in the file. */
  dataBytes: number;
}

export function summariseChunks(bytes: Uint8Array): PngChunkSummary {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const summary: PngChunkSummary = { trns: false, dataBytes: 0 };
  let offset = PNG_SIGNATURE.length;
  while (offset + 8 <= buf.length) {
    const length = buf.readUInt32BE(offset);
    const type = buf.toString('latin1', offset + 4, offset + 8);
    if (type === 'IDAT') summary.dataBytes += Math.min(length, buf.length - offset - 8);
    else if (type === 'tRNS') summary.trns = true;
    else if (type === 'gAMA' && length === 4 && offset + 12 <= buf.length) summary.gamma = buf.readUInt32BE(offset + 8);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  return summary;
}

const CHANNELS_BY_COLOR_TYPE: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7's seven passes, each as [first column, first row, column step, row step]. */
export const ADAM7_PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** The exact size of the inflated image data: every (sub-image) row with its filter byte. */
export function filteredSize(header: PngHeader): number {
  const bits = CHANNELS_BY_COLOR_TYPE[header.colorType] * header.bitDepth;
  const rows = (width: number, height: number) => (width && height ? (Math.ceil((width * bits) / 8) + 1) * height : 0);
  if (!header.interlaced) return rows(header.width, header.height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7_PASSES) {
    total += rows(Math.ceil((header.width - x0) / dx), Math.ceil((header.height - y0) / dy));
  }
  return total;
}

/** Deflate's best case: a 258-byte match in under 2 bits, about 1032:1 over a long stream. */
const DEFLATE_MAX_RATIO = 1032;

/**
 * Refuses a file whose image data is too small to inflate to the size its header claims (a
 * decoding bomb's usual shape), so no decoder allocates pixels for an image that can't be there.
 */
export function assertPlausibleData(header: PngHeader, dataBytes: number): void {
  const needed = filteredSize(header);
  if (needed > dataBytes * DEFLATE_MAX_RATIO + 1024) {
    throw new PngError(
      415,
      'invalid_png',
      `the PNG claims ${header.width}x${header.height} pixels, but its ${dataBytes} bytes of image data can't inflate to the ${needed} bytes that needs`,
    );
  }
}
