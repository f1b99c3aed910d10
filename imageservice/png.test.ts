/**
 * The chunk walk as an upload arrives (PngStructureCheck): fed in pieces of any size, it comes to the
 * verdict it comes to on the whole body at once, for a sound PNG and for it cut short at every byte or
 * with any one byte flipped; and the verdicts themselves, named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { chunk, ihdr } from '../test/fixtures/pngs.ts';
import { PngError, PngStructureCheck, checkPngStructure } from './png.ts';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A small real PNG with an ancillary chunk and two IDATs, so the walk crosses several chunks. */
function samplePng(): Buffer {
  const png = new PNG({ width: 7, height: 5 });
  for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 37) % 256;
  const encoded = PNG.sync.write(png);
  // Split its one IDAT in two and put a tEXt chunk before it.
  const idatAt = encoded.indexOf('IDAT') - 4;
  const idatLength = encoded.readUInt32BE(idatAt);
  const data = encoded.subarray(idatAt + 8, idatAt + 8 + idatLength);
  const half = Math.floor(data.length / 2);
  return Buffer.concat([
    encoded.subarray(0, idatAt),
    chunk('tEXt', Buffer.from('Comment\0in pieces')),
    chunk('IDAT', data.subarray(0, half)),
    chunk('IDAT', data.subarray(half)),
    encoded.subarray(idatAt + 12 + idatLength),
  ]);
}

/** The verdict of one walk: 'ok', or the error's code and message. */
function verdict(bytes: Buffer, pieceSize: number): string {
  try {
    const check = new PngStructureCheck();
    for (let at = 0; at < bytes.length; at += pieceSize) check.push(bytes.subarray(at, at + pieceSize));
    check.end();
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof PngError, String(err));
    return `${err.code}: ${err.message}`;
  }
}

const PIECES = [1, 3, 8, 13, 64];

test('fed in pieces of 1, 3, 8, 13 or 64 bytes, the walk says what it says on the whole body: cut at every byte, any byte flipped', () => {
  const png = samplePng();
  assert.equal(verdict(png, png.length), 'ok');
  const cases: Buffer[] = [];
  for (let cut = 33; cut < png.length; cut++) cases.push(png.subarray(0, cut));
  for (let at = 33; at < png.length; at++) {
    const flipped = Buffer.from(png);
    flipped[at] ^= 0x40;
    cases.push(flipped);
  }
  let failures = 0;
  for (const bytes of cases) {
    const whole = verdict(bytes, bytes.length);
    if (whole !== 'ok') failures++;
    for (const size of PIECES) assert.equal(verdict(bytes, size), whole, `${bytes.length} bytes in pieces of ${size}`);
  }
  // Every cut and every flip is refused: each byte after the header is a length, a type, data or a checksum.
  assert.equal(failures, cases.length, `${failures} of ${cases.length} refused`);
});

test('the verdicts, named: truncated in a chunk header or in a chunk, a bad checksum, a malformed chunk, no IDAT', () => {
  const png = samplePng();
  const idat = png.indexOf('IDAT') - 4;
  const expectations: [string, Buffer, RegExp][] = [
    ['cut inside a chunk header', png.subarray(0, idat + 3), /^truncated_png: the PNG is truncated: it ends after \d+ bytes, before its IEND chunk$/],
    ['cut inside an IDAT', png.subarray(0, idat + 10), new RegExp(`^truncated_png: the PNG is truncated: chunk IDAT at byte ${idat} needs \\d+ bytes, the body ends first$`)],
    ['a flipped data byte', Buffer.concat([png.subarray(0, idat + 9), Buffer.from([png[idat + 9] ^ 1]), png.subarray(idat + 10)]), new RegExp(`^invalid_png: the PNG is corrupt: the checksum of chunk IDAT at byte ${idat} does not match$`)],
    ['a type that is not four letters', Buffer.concat([png.subarray(0, idat + 4), Buffer.from('ID@T'), png.subarray(idat + 8)]), new RegExp(`^invalid_png: the PNG has a malformed chunk at byte ${idat}$`)],
    ['no IDAT at all', Buffer.concat([SIGNATURE, ihdr(7, 5, 8, 6), chunk('IEND', Buffer.alloc(0))]), /^invalid_png: the PNG has no image data \(IDAT chunk\)$/],
  ];
  for (const [what, bytes, expected] of expectations) {
    for (const size of [1, bytes.length]) assert.match(verdict(bytes, size), expected, `${what}, pieces of ${size}`);
    assert.throws(() => checkPngStructure(bytes), (err: PngError) => expected.test(`${err.code}: ${err.message}`), what);
  }
  // What follows IEND is not read.
  assert.equal(verdict(Buffer.concat([png, Buffer.from('trailing bytes')]), 5), 'ok');
});
