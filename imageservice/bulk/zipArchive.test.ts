import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveError, ZipArchive } from './zipArchive.ts';
import { rgbaImage } from '../../test/fixtures/pngs.ts';
import { zipOf, type ZipEntrySpec } from '../../test/fixtures/zip.ts';

const limits = { maxEntryBytes: 64 * 1024, maxTotalBytes: 256 * 1024, maxEntries: 100 };

function zipFile(entries: ZipEntrySpec[] | Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulk-zip-'));
  const file = path.join(dir, 'a.zip');
  fs.writeFileSync(file, Buffer.isBuffer(entries) ? entries : zipOf(entries));
  return file;
}

test('reads stored and deflated entries in memory; folders are passed over', async () => {
  const one = rgbaImage(8, 8, 1).png;
  const two = rgbaImage(8, 8, 2).png;
  const file = zipFile([
    { name: 'dir/', data: Buffer.alloc(0) },
    { name: 'dir/one.png', data: one },
    { name: 'two.png', data: two, deflate: true },
  ]);
  const { archive, entries, skipped } = await ZipArchive.open(file, limits);
  assert.deepEqual(entries, [
    { name: 'dir/one.png', size: one.length },
    { name: 'two.png', size: two.length },
  ]);
  assert.deepEqual(skipped, []);
  assert.deepEqual(await archive.read('two.png'), two);
  assert.deepEqual(await archive.read('dir/one.png'), one);
  archive.close();
  // Nothing was written beside the archive.
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['a.zip']);
});

test('entries named ../x, /x or C:\\x are refused with a reason; the others are still read', async () => {
  const png = rgbaImage(4, 4, 1).png;
  const file = zipFile([
    { name: '../escape.png', data: png },
    { name: 'a/../../escape.png', data: png },
    { name: '/etc/escape.png', data: png },
    { name: 'C:/escape.png', data: png },
    { name: 'fine.png', data: png },
  ]);
  const { archive, entries, skipped } = await ZipArchive.open(file, limits);
  assert.deepEqual(entries.map((e) => e.name), ['fine.png']);
  assert.deepEqual(skipped.map((s) => s.entry), ['../escape.png', 'a/../../escape.png', '/etc/escape.png', 'C:/escape.png']);
  for (const s of skipped) assert.match(s.reason, /^refused: (invalid relative path|absolute path): .* \(an entry's name must stay inside the archive\)$/);
  archive.close();
  assert.deepEqual(fs.readdirSync(path.dirname(path.dirname(file))).filter((n) => n === 'escape.png'), []);
});

test('zip bombs: an entry that claims too much is skipped, an archive that claims too much in all or inflates past its claim is refused', async () => {
  const zeros = Buffer.alloc(60 * 1024);
  // One entry claiming 3 GiB of a few bytes.
  const claims = await ZipArchive.open(zipFile([{ name: 'big.png', data: Buffer.alloc(10), deflate: true, declaredSize: 3 * 2 ** 30 }, { name: 'ok.png', data: zeros }]), limits);
  assert.deepEqual(claims.entries.map((e) => e.name), ['ok.png']);
  assert.match(claims.skipped[0].reason, /claims 3072\.0 MiB uncompressed, more than the 0\.1 MiB an image may be/);
  claims.archive.close();
  // Five entries just under the image limit: 300 KiB in all, over the 256 KiB budget.
  const many = Array.from({ length: 5 }, (_, i) => ({ name: `z${i}.png`, data: zeros, deflate: true }));
  await assert.rejects(ZipArchive.open(zipFile(many), limits), (err: Error) => err instanceof ArchiveError && /claims more than 0\.3 MiB uncompressed in all.*zip bomb/.test(err.message));
  // An entry that lies: it claims 1 KiB and inflates to 60 KiB.
  const liar = await ZipArchive.open(zipFile([{ name: 'liar.png', data: zeros, deflate: true, declaredSize: 1024 }]), limits);
  await assert.rejects(liar.archive.read('liar.png'), (err: Error) => err instanceof ArchiveError && /liar\.png is corrupt: too many bytes in the stream/.test(err.message));
  liar.archive.close();
});

test('a corrupt archive, or something else named .zip, is refused in words', async () => {
  const good = zipOf([{ name: 'a.png', data: rgbaImage(4, 4, 1).png, deflate: true }]);
  await assert.rejects(ZipArchive.open(zipFile(Buffer.from('not a zip at all')), limits), /a\.zip is not a readable zip archive: End of central directory record signature not found/);
  await assert.rejects(ZipArchive.open(zipFile(good.subarray(0, good.length - 30)), limits), ArchiveError);
  // A broken deflate stream: the listing is fine, the read says the entry is corrupt.
  const broken = Buffer.from(good);
  broken.fill(0xff, 30 + 'a.png'.length, 30 + 'a.png'.length + 8);
  const { archive } = await ZipArchive.open(zipFile(broken), limits);
  await assert.rejects(archive.read('a.png'), /a\.png is corrupt/);
  archive.close();
});
