import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { walk } from './sources.ts';
import { scan, sha256 } from './scan.ts';
import { Manifest } from './manifest.ts';
import { rgbaImage } from '../../test/fixtures/pngs.ts';
import { zipOf } from '../../test/fixtures/zip.ts';

const limits = { maxEntryBytes: 1 << 20, maxTotalBytes: 8 << 20, maxEntries: 1000 };

function tree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bulk-walk-'));
  fs.mkdirSync(path.join(root, 'photos', 'b', 'deep'), { recursive: true });
  fs.mkdirSync(path.join(root, 'photos', 'a'));
  fs.writeFileSync(path.join(root, 'photos', 'b', 'deep', 'z.png'), rgbaImage(4, 4, 1).png);
  fs.writeFileSync(path.join(root, 'photos', 'b', 'x.png'), rgbaImage(4, 4, 2).png);
  fs.writeFileSync(path.join(root, 'photos', 'a', 'y.png'), rgbaImage(4, 4, 3).png);
  // A whole-second mtime, which utimes can put back exactly.
  fs.utimesSync(path.join(root, 'photos', 'a', 'y.png'), new Date(2026, 0, 1), new Date(2026, 0, 1));
  fs.writeFileSync(path.join(root, 'photos', 'notes.txt'), 'not an image');
  fs.writeFileSync(path.join(root, 'photos', 'pack.zip'), zipOf([{ name: 'in/zip.png', data: rgbaImage(4, 4, 4).png, deflate: true }]));
  // A loop (b/up -> photos), a second way to a file, and a link to nowhere.
  fs.symlinkSync(path.join(root, 'photos'), path.join(root, 'photos', 'b', 'up'));
  fs.symlinkSync(path.join(root, 'photos', 'a', 'y.png'), path.join(root, 'photos', 'b', 'y-again.png'));
  fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'photos', 'broken.png'));
  return root;
}

test('walk: recursive in sorted order, loops and second links walked once, broken links and missing paths said in words', async () => {
  const root = tree();
  const walked = await walk([path.join(root, 'photos')]);
  assert.deepEqual(walked.problems, []);
  assert.deepEqual(
    walked.sources.map((s) => [s.kind, s.outRel]),
    [
      ['file', 'photos/a/y.png'],
      ['file', 'photos/b/deep/z.png'],
      ['file', 'photos/b/x.png'],
      ['file', 'photos/notes.txt'],
      ['zip', 'photos/pack.zip'],
    ],
  );
  const reasons = Object.fromEntries(walked.skipped.map((s) => [path.relative(root, s.name), s.reason]));
  assert.match(reasons['photos/b/up'], /already walked as .*photos \(a symbolic link loop\)/);
  assert.match(reasons['photos/b/y-again.png'], /a file already walked as .*y\.png/);
  assert.equal(reasons['photos/broken.png'], 'a broken symbolic link');
  // The same walk twice is the same list.
  assert.deepEqual((await walk([path.join(root, 'photos')])).sources.map((s) => s.path), walked.sources.map((s) => s.path));

  const missing = await walk([path.join(root, 'nope'), path.join(root, 'photos', 'a', 'y.png')]);
  assert.deepEqual(missing.problems, [`no such file or folder: ${path.join(root, 'nope')}`]);
  assert.deepEqual(missing.sources.map((s) => s.outRel), ['y.png']);
});

test('scan: PNGs hashed, the rest skipped with a reason; an unchanged size and mtime is not read again', async () => {
  const root = tree();
  const manifest = new Manifest(path.join(root, 'state'));
  const walked = await walk([path.join(root, 'photos')]);
  const first = await scan(walked, manifest, 'job', limits);
  assert.deepEqual(first.problems, []);
  const bySource = Object.fromEntries(first.files.map((f) => [path.relative(root, f.source), f]));
  assert.equal(bySource['photos/a/y.png'].sha256, sha256(rgbaImage(4, 4, 3).png));
  assert.equal(bySource['photos/pack.zip!/in/zip.png'].sha256, sha256(rgbaImage(4, 4, 4).png));
  assert.equal(bySource['photos/pack.zip!/in/zip.png'].outRel, 'photos/pack/in/zip.png');
  assert.match(bySource['photos/notes.txt'].skipped!, /not a PNG/);
  assert.equal(first.files.filter((f) => !f.skipped).length, 4);
  manifest.saveJob({ name: 'job', op: 'invert', outDir: root });
  manifest.record('job', first.files, first.archives);

  // New bytes under the old size and mtime: the scan trusts the manifest (so a resume costs a stat, not a hash).
  const file = path.join(root, 'photos', 'a', 'y.png');
  const { mtime } = fs.statSync(file);
  // Same size: one byte of the IEND CRC flipped.
  const other = Buffer.from(fs.readFileSync(file));
  other[other.length - 1] ^= 1;
  fs.writeFileSync(file, other);
  fs.utimesSync(file, mtime, mtime);
  const again = await scan(await walk([path.join(root, 'photos')]), manifest, 'job', limits);
  assert.equal(again.files.find((f) => f.source === file)!.sha256, sha256(rgbaImage(4, 4, 3).png));
  // A new mtime is read again.
  fs.utimesSync(file, new Date(), new Date());
  const third = await scan(await walk([path.join(root, 'photos')]), manifest, 'job', limits);
  assert.equal(third.files.find((f) => f.source === file)!.sha256, sha256(other));
  manifest.close();
});
