/**
 * A PNG encoder without a PNG library: rows filtered in JavaScript, four bytes at a time, then
 * deflated by node's zlib in one native call and framed with zlib.crc32. It exists because libvips
 * (through sharp) only offers no filter or all five, and zlib-ng's level 1 uses fixed Huffman codes,
 * which make a photo bigger than storing it (figures in docs/benchmarks.md).
 */
import zlib from 'node:zlib';
import { once } from 'node:events';
import { PNG_SIGNATURE } from './png.ts';
import { colorTypeOf, type RawImage, type ZlibEncoder } from './codec.ts';

const HIGH = 0x80808080;
const LOW = 0x7f7f7f7f;

/** a - b in each of the four bytes of a word, modulo 256 (no borrow crosses a byte). */
function bytewiseSub(a: number, b: number): number {
  return (((a | HIGH) - (b & LOW)) ^ ((a ^ ~b) & HIGH)) >>> 0;
}

/**
 * One row through the filter, word by word: `cur` and `prev` are the row and the one above, in PNG
 * byte order, zero-padded to whole words; the result is written to `out`.
 */
function filterRow(filter: 0 | 1 | 2, cur: Uint32Array, prev: Uint32Array, out: Uint32Array, bpp: number): Uint32Array {
  const words = cur.length;
  if (filter === 0) return cur;
  if (filter === 2) {
    for (let k = 0; k < words; k++) out[k] = bytewiseSub(cur[k], prev[k]);
    return out;
  }
  // Sub: the bytes bpp to the left, gathered from one or two words (zero before the row starts).
  const q = bpp >> 2;
  const r = (bpp & 3) * 8;
  for (let k = 0; k < words; k++) {
    const hi = k - q >= 0 ? cur[k - q] : 0;
    let left = hi;
    if (r !== 0) left = ((k - q - 1 >= 0 ? cur[k - q - 1] >>> (32 - r) : 0) | (hi << r)) >>> 0;
    out[k] = bytewiseSub(cur[k], left);
  }
  return out;
}

/** Writes one chunk whose data is the pieces given, in order, and returns the offset after it. */
function chunk(out: Buffer, offset: number, type: string, pieces: Uint8Array[]): number {
  out.write(type, offset + 4, 'latin1');
  let crc = zlib.crc32(type);
  let at = offset + 8;
  for (const piece of pieces) {
    out.set(piece, at);
    crc = zlib.crc32(piece, crc);
    at += piece.length;
  }
  out.writeUInt32BE(at - offset - 8, offset);
  out.writeUInt32BE(crc, at);
  return at + 4;
}

/** Filtered rows go to zlib in strips of about this many bytes, so no whole filtered copy of the image is ever held. */
const STRIP_BYTES = 1 << 20;

/** Deflates strips as they are made (zlib works on the thread pool meanwhile) and returns the stream's pieces. */
async function deflateStrips(strips: Iterable<Buffer>, settings: ZlibEncoder): Promise<{ parts: Buffer[]; length: number }> {
  const deflate = zlib.createDeflate({ level: settings.level, strategy: settings.strategy, memLevel: settings.memLevel ?? 8, chunkSize: 256 * 1024 });
  const parts: Buffer[] = [];
  let length = 0;
  deflate.on('data', (part: Buffer) => {
    parts.push(part);
    length += part.length;
  });
  const ended = once(deflate, 'end');
  for (const strip of strips) {
    if (!deflate.write(strip)) await once(deflate, 'drain');
  }
  deflate.end();
  await ended;
  return { parts, length };
}

/** The image's rows, filtered, in strips of whole rows. */
function* filteredStrips(image: RawImage, filter: 0 | 1 | 2): Generator<Buffer> {
  const { height, channels, depth, samples } = image;
  const bpp = channels * (depth / 8);
  const stride = image.width * bpp;
  const source = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const rowsPerStrip = Math.max(1, Math.floor(STRIP_BYTES / (stride + 1)));
  // Rows are copied into word-aligned scratch rows (a native copy), so unaligned rows and the
  // byte swap of 16-bit samples cost nothing in the word loop.
  const wordsPerRow = Math.ceil(stride / 4);
  let cur = new Uint32Array(wordsPerRow);
  let prev = new Uint32Array(wordsPerRow);
  const out = new Uint32Array(wordsPerRow);
  const curBytes = [Buffer.from(cur.buffer, 0, stride), Buffer.from(prev.buffer, 0, stride)];
  for (let y0 = 0; y0 < height; y0 += rowsPerStrip) {
    const rows = Math.min(rowsPerStrip, height - y0);
    const strip = Buffer.allocUnsafe(rows * (stride + 1));
    for (let r = 0; r < rows; r++) {
      const y = y0 + r;
      const bytes = curBytes[y & 1];
      bytes.set(source.subarray(y * stride, (y + 1) * stride));
      if (depth === 16) bytes.swap16();
      const row = filterRow(filter, cur, prev, out, bpp);
      strip[r * (stride + 1)] = filter;
      strip.set(new Uint8Array(row.buffer, 0, stride), r * (stride + 1) + 1);
      [cur, prev] = [prev, cur];
    }
    yield strip;
  }
}

export async function encodeZlib(image: RawImage, settings: ZlibEncoder): Promise<Buffer> {
  const { width, height, channels, depth } = image;
  const idat = await deflateStrips(filteredStrips(image, settings.filter), settings);

  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colorTypeOf(channels);
  const gama = image.gamma === undefined ? undefined : Buffer.alloc(4);
  gama?.writeUInt32BE(image.gamma!);
  const png = Buffer.allocUnsafe(PNG_SIGNATURE.length + 25 + (gama ? 16 : 0) + 12 + idat.length + 12);
  png.set(PNG_SIGNATURE, 0);
  let offset = chunk(png, PNG_SIGNATURE.length, 'IHDR', [ihdr]);
  if (gama) offset = chunk(png, offset, 'gAMA', [gama]);
  offset = chunk(png, offset, 'IDAT', idat.parts);
  chunk(png, offset, 'IEND', []);
  return png;
}
