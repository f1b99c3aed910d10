/**
 * The two codecs against each other, with pngjs as the oracle: for every PNG kind and every op, the
 * native codec's output decodes (in pngjs) to exactly the pixels the pngjs codec's output decodes
 * to, and both follow the README's output rules. Then the limits: decoding bombs refused before
 * any large allocation, large images in a few copies of their pixels, the fallback when sharp
 * can't load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { PNG } from 'pngjs';
import { allKinds, encodeKind, firstMismatch, readOutput, chunk, ihdr, type PngKind } from '../test/fixtures/pngs.ts';
import { OPS } from './ops.ts';
import { ImageDecodeError, type Codec, type EncoderSettings } from './codec.ts';
import { createCodec, resolveCodec } from './codecs.ts';
import { decodeSharp } from './codecSharp.ts';
import { encodeZlib } from './codecZlib.ts';
import { transformPng } from './worker/transform.ts';
import { summariseChunks } from './png.ts';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const wave = (x: number, y: number, k: number, max: number) => ((x * 37 + y * 91 + k * 53) * 2654435761) % (max + 1);

/** Inserts chunks after IHDR (before any PLTE or IDAT) and before IEND. */
function withChunks(png: Buffer, early: Buffer[], late: Buffer[] = []): Buffer {
  const afterIhdr = 33;
  return Buffer.concat([png.subarray(0, afterIhdr), ...early, png.subarray(afterIhdr, png.length - 12), ...late, png.subarray(png.length - 12)]);
}

const u32 = (...values: number[]) => Buffer.concat(values.map((v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; }));

/** A real ICC profile (Display P3), taken from a PNG sharp writes: libvips would convert its pixels to sRGB unless told not to. */
async function p3Profile(): Promise<Buffer> {
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 200, g: 10, b: 10 } } }).withIccProfile('p3').png().toBuffer();
  let offset = 8;
  for (;;) {
    const length = png.readUInt32BE(offset);
    if (png.toString('latin1', offset + 4, offset + 8) === 'iCCP') return png.subarray(offset, offset + 12 + length);
    offset += 12 + length;
  }
}

/** Odd sizes, 16-bit tRNS and the low depths allKinds() leaves out. */
function extraKinds(): PngKind[] {
  const palette: [number, number, number][] = [[250, 0, 10], [0, 128, 255]];
  return [
    { name: 'rgb 8 1x1', width: 1, height: 1, colorType: 2, bitDepth: 8, sample: () => [200, 100, 50] },
    { name: 'grey+alpha 16 1x1', width: 1, height: 1, colorType: 4, bitDepth: 16, sample: () => [40000, 1234] },
    { name: 'palette 1 1x1 interlaced', width: 1, height: 1, colorType: 3, bitDepth: 1, interlaced: true, palette, sample: () => [1] },
    { name: 'rgba 8 1x4096', width: 1, height: 4096, colorType: 6, bitDepth: 8, sample: (x, y) => [0, 1, 2, 3].map((k) => wave(x, y, k, 255)) },
    { name: 'grey 2 4096x1', width: 4096, height: 1, colorType: 0, bitDepth: 2, sample: (x, y) => [wave(x, y, 0, 3)] },
    { name: 'rgb 16 1x4096 interlaced', width: 1, height: 4096, colorType: 2, bitDepth: 16, interlaced: true, sample: (x, y) => [0, 1, 2].map((k) => wave(x, y, k, 65535)) },
    { name: 'palette 4 3x5 interlaced', width: 3, height: 5, colorType: 3, bitDepth: 4, interlaced: true, palette: [...palette, [9, 9, 9]], sample: (x, y) => [wave(x, y, 1, 2)] },
    { name: 'grey 16 + tRNS', width: 9, height: 7, colorType: 0, bitDepth: 16, trns: [4660], sample: (x, y) => [(x + y) % 3 === 0 ? 4660 : wave(x, y, 0, 65535)] },
    { name: 'rgb 16 + tRNS', width: 9, height: 7, colorType: 2, bitDepth: 16, trns: [1, 2, 3], sample: (x, y) => ((x + y) % 4 === 0 ? [1, 2, 3] : [0, 1, 2].map((k) => wave(x, y, k, 65535))) },
    { name: 'grey 1 + tRNS', width: 9, height: 7, colorType: 0, bitDepth: 1, trns: [0], sample: (x, y) => [(x * y) & 1] },
    { name: 'palette 1', width: 17, height: 3, colorType: 3, bitDepth: 1, palette, sample: (x, y) => [(x + y) & 1] },
  ];
}

/** Each kind plain, and (for every other kind) with gAMA and other ancillary chunks, and an ICC profile on colour kinds. */
async function cases(): Promise<{ name: string; kind: PngKind; png: Buffer; gamma?: number }[]> {
  const icc = await p3Profile();
  const out: { name: string; kind: PngKind; png: Buffer; gamma?: number }[] = [];
  [...allKinds(), ...extraKinds()].forEach((kind, i) => {
    const png = encodeKind(kind);
    out.push({ name: kind.name, kind, png });
    if (i % 2 === 0) {
      const colour = kind.colorType === 2 || kind.colorType === 6 || kind.colorType === 3;
      const early = [
        chunk('gAMA', u32(100000)), // gamma 1.0: a decoder that applied it would change every pixel
        chunk('cHRM', u32(31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)),
        ...(colour ? [icc] : []),
        chunk('pHYs', Buffer.concat([u32(2835, 2835), Buffer.from([1])])),
        chunk('tEXt', Buffer.from('Comment\0made for the codec tests', 'latin1')),
        chunk('tIME', Buffer.from([0x07, 0xea, 1, 2, 3, 4, 5])),
        chunk('prVt', Buffer.from('a private ancillary chunk')),
      ];
      out.push({ name: `${kind.name} + gAMA, cHRM${colour ? ', iCCP' : ''}, pHYs, tEXt, tIME, prVt`, kind, png: withChunks(png, early, [chunk('zTXt', Buffer.concat([Buffer.from('Note\0\0', 'latin1'), zlib.deflateSync('after the data')]))]), gamma: 100000 });
    }
  });
  return out;
}

const NATIVE_ENCODERS: (EncoderSettings | undefined)[] = [
  undefined, // the default
  { kind: 'zlib', level: 0, strategy: 0, filter: 0 },
  { kind: 'zlib', level: 1, strategy: 2, filter: 1 },
  { kind: 'zlib', level: 6, strategy: 0, filter: 2, memLevel: 9 },
  { kind: 'libvips', compressionLevel: 0, adaptiveFiltering: false },
  { kind: 'libvips', compressionLevel: 6, adaptiveFiltering: true },
];

test('for every PNG kind and op, the native codec gives exactly the pixels of the pngjs codec (decoded in pngjs), and both follow the output rules', async () => {
  const reference = createCodec('pngjs');
  const natives: Codec[] = [];
  for (const encoder of NATIVE_ENCODERS) natives.push(createCodec('sharp', encoder));
  const all = await cases();
  let compared = 0;
  for (const { name, kind, png, gamma } of all) {
    const hadAlpha = kind.colorType === 4 || kind.colorType === 6 || Boolean(kind.trns);
    for (const op of OPS) {
      const expected = await transformPng(png, op, reference);
      // The oracle itself against the kind's definition (test/fixtures/pngs.ts), so agreeing with it means something.
      assert.equal(firstMismatch(kind, op, expected.png), undefined, `pngjs: ${name} ${op}`);
      const want = readOutput(expected.png);
      for (const codec of natives) {
        const what = `${name}, ${op}, sharp with ${JSON.stringify(codec.encoder)}`;
        const got = await transformPng(png, op, codec);
        const out = readOutput(got.png);
        assert.equal(out.width, want.width, what);
        assert.equal(out.height, want.height, what);
        assert.equal(out.colorType, want.colorType, `${what}: colour type`);
        assert.equal(out.depth, want.depth, `${what}: bit depth`);
        assert.ok(Buffer.from(out.rgba as Uint8Array).equals(Buffer.from(want.rgba as Uint8Array)), `${what}: pixels differ (${firstMismatch(kind, op, got.png)})`);
        assert.equal(summariseChunks(got.png).gamma, gamma, `${what}: gAMA`);
        compared++;
      }
      // The README's rules, for both: 16 bits kept, alpha exactly when the input had it, grey when grey or grayscale.
      const grey = kind.colorType === 0 || kind.colorType === 4 || op === 'grayscale';
      assert.equal(want.depth, kind.bitDepth === 16 ? 16 : 8, `${name} ${op}: depth`);
      assert.equal(want.colorType, grey ? (hadAlpha ? 4 : 0) : hadAlpha ? 6 : 2, `${name} ${op}: colour type`);
      assert.equal(summariseChunks(expected.png).gamma, gamma, `pngjs: ${name} ${op}: gAMA`);
    }
  }
  assert.ok(compared >= 1000, `compared ${compared} outputs`);
});

test('photo-sized images: both codecs agree on every op, and the native output is pngjs-decodable at its default settings', async () => {
  const width = 1024;
  const height = 768;
  const data = Buffer.alloc(width * height * 4);
  let state = 12345;
  for (let i = 0; i < data.length; i++) data[i] = (i & 3) === 3 ? 255 - (i % 7) : (((i >> 2) % width) / 5 + ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) >>> 29)) & 255;
  const png = PNG.sync.write({ width, height, data } as unknown as PNG, { deflateLevel: 6, filterType: 4 });
  const [reference, native] = [createCodec('pngjs'), createCodec('sharp')];
  for (const op of OPS) {
    const [a, b] = [await transformPng(png, op, reference), await transformPng(png, op, native)];
    assert.ok((readOutput(a.png).rgba as Buffer).equals(readOutput(b.png).rgba as Buffer), op);
  }
});

test('undecodable image data fails as a decode error (never retried) in both codecs', async () => {
  const rows = (bytes: number) => zlib.deflateSync(Buffer.alloc(bytes, 1));
  const bad: [string, Buffer][] = [
    ['not zlib at all', Buffer.concat([SIGNATURE, ihdr(8, 8, 8, 6), chunk('IDAT', Buffer.from('definitely not zlib data')), chunk('IEND')])],
    ['a zlib stream cut short', Buffer.concat([SIGNATURE, ihdr(64, 64, 8, 2), chunk('IDAT', zlib.deflateSync(Buffer.alloc(64 * 193, 7)).subarray(0, 40)), chunk('IEND')])],
    ['a complete stream with rows missing', Buffer.concat([SIGNATURE, ihdr(64, 64, 8, 2), chunk('IDAT', rows(10 * 193)), chunk('IEND')])],
    ['no image data', Buffer.concat([SIGNATURE, ihdr(8, 8, 8, 2), chunk('IEND')])],
    ['not a PNG', Buffer.from('GIF89a and so on')],
  ];
  for (const name of ['pngjs', 'sharp'] as const) {
    const codec = createCodec(name);
    for (const [what, png] of bad) {
      await assert.rejects(transformPng(png, 'swap-rg', codec), (err: Error) => err instanceof ImageDecodeError && /cannot be decoded/.test(err.message), `${name}: ${what}`);
    }
  }
});

test('decoding bombs are refused before any large allocation, by either codec', async () => {
  const tiny = zlib.deflateSync(Buffer.alloc(100));
  const bombs: [string, Buffer, number, RegExp][] = [
    // Past MAX_PIXELS: refused on the header.
    ['100000x100000, 150 bytes', Buffer.concat([SIGNATURE, ihdr(100_000, 100_000, 8, 6), chunk('IDAT', tiny), chunk('IEND')]), 50_000_000, /more than the limit/],
    // Within MAX_PIXELS (7000x7000, 196 MB of RGBA): its 20 bytes of data can't inflate to that.
    ['7000x7000 RGBA, 20 bytes of data', Buffer.concat([SIGNATURE, ihdr(7000, 7000, 8, 6), chunk('IDAT', tiny), chunk('IEND')]), 50_000_000, /can't inflate/],
    // A limit raised to 4 gigapixels changes nothing for a file that can't hold the pixels.
    ['60000x60000 RGBA 16-bit with the limit raised', Buffer.concat([SIGNATURE, ihdr(60_000, 60_000, 16, 6), chunk('IDAT', tiny), chunk('IEND')]), 4e9, /can't inflate/],
  ];
  for (const name of ['pngjs', 'sharp'] as const) {
    const codec = createCodec(name);
    for (const [what, png, maxPixels, reason] of bombs) {
      const before = process.memoryUsage();
      await assert.rejects(transformPng(png, 'invert', codec, maxPixels), (err: Error) => err instanceof ImageDecodeError && reason.test(err.message), `${name}: ${what}`);
      const after = process.memoryUsage();
      assert.ok(after.rss - before.rss < 32 * 2 ** 20 && after.arrayBuffers - before.arrayBuffers < 16 * 2 ** 20, `${name}: ${what} allocated ${((after.rss - before.rss) / 2 ** 20).toFixed(0)} MB`);
    }
  }
  // libvips keeps its own pixel limit too (the same MAX_PIXELS), whatever reaches it.
  const fine = encodeKind({ name: 'rgb', width: 100, height: 100, colorType: 2, bitDepth: 8, sample: () => [1, 2, 3] });
  await assert.rejects(decodeSharp(fine, { header: { width: 100, height: 100, bitDepth: 8, colorType: 2, interlaced: false }, chunks: summariseChunks(fine), maxPixels: 9999 }), /cannot be decoded.*pixel limit/i);
});

test('a 4000x3000 image takes a few copies of its raw pixels at the peak (measured in a fresh process)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codec-large-'));
  const width = 4000;
  const height = 3000;
  const samples = new Uint8Array(width * height * 3);
  let state = 7;
  for (let i = 0; i < samples.length; i++) samples[i] = (((i % (width * 3)) >> 4) + ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) >>> 28)) & 255;
  const file = path.join(dir, 'large.png');
  fs.writeFileSync(file, await encodeZlib({ width, height, channels: 3, depth: 8, samples }, { kind: 'zlib', level: 1, strategy: 2, filter: 2 }));
  const raw = samples.byteLength;
  // The codec's modules and libraries load on a small image first, so the peak that grows after is the image's own.
  for (const [name, allowed] of [['sharp', 3.5], ['pngjs', 6]] as const) {
    const code = [
      "import fs from 'node:fs';",
      "import { createCodec } from './imageservice/codecs.ts';",
      "import { transformPng } from './imageservice/worker/transform.ts';",
      "import { encodeKind } from './test/fixtures/pngs.ts';",
      `const codec = createCodec('${name}');`,
      "await transformPng(encodeKind({ name: 'w', width: 16, height: 16, colorType: 2, bitDepth: 8, sample: () => [1, 2, 3] }), 'swap-rg', codec);",
      `const png = fs.readFileSync(${JSON.stringify(file)});`,
      'const before = process.resourceUsage().maxRSS;',
      "const r = await transformPng(png, 'swap-rg', codec);",
      'console.log(JSON.stringify({ grownKiB: process.resourceUsage().maxRSS - before, width: r.width }));',
    ].join('\n');
    // The least of two fresh processes: garbage buffers freed late on a busy machine (another suite running
    // beside this one) lift a single peak by a tenth or so; a copy the codec keeps shows in both.
    const peaks: number[] = [];
    for (let run = 0; run < 2; run++) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: path.resolve(import.meta.dirname, '..'), encoding: 'utf8' });
      const { grownKiB, width: got } = JSON.parse(out.trim().split('\n').pop()!);
      assert.equal(got, width);
      peaks.push((grownKiB * 1024) / raw);
    }
    const copies = Math.min(...peaks);
    assert.ok(copies <= allowed, `${name}: the peak grew by ${peaks.map((p) => p.toFixed(2)).join(' and ')} copies of the raw pixels (at most ${allowed})`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('IMAGE_CODEC=sharp falls back to pngjs, with a warning, when sharp can\'t load', async () => {
  const fallback = await resolveCodec('sharp', async () => {
    throw new Error('Could not load the "sharp" module using the linux-x64 runtime\nmore lines');
  });
  assert.equal(fallback.codec, 'pngjs');
  assert.match(fallback.warning!, /can't load.*linux-x64 runtime.*using pngjs/);
  assert.deepEqual(await resolveCodec('sharp'), { codec: 'sharp' });
  assert.deepEqual(await resolveCodec('pngjs', async () => assert.fail('pngjs needs no sharp')), { codec: 'pngjs' });
});
