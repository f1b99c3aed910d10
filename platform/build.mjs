// @ts-check
/**
 * Compiles the platform to dist/ (tsconfig.build.json) when a source is newer than the last build, so
 * `npm start` runs plain JavaScript: no tsx or esbuild in each service. Plain JavaScript itself, because
 * it runs before anything is compiled. Exit 0: dist/ is current; 1: the build failed (tsc said why).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const STAMP = path.join(DIST, '.built');
const LOCK = path.join(DIST, '.building');
/** A lock older than this was left by a build that died. */
const STALE_LOCK_MS = 180_000;

const config = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8'));
/** @type {string[]} */
const sourceDirs = config.include;

/** The newest modification among the sources: files and folders (a folder changes when a file is added, renamed or removed). */
function newestSource() {
  let newest = 0;
  const visit = (/** @type {string} */ dir) => {
    newest = Math.max(newest, fs.statSync(dir).mtimeMs);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  };
  for (const dir of sourceDirs) visit(path.join(ROOT, dir));
  for (const file of ['tsconfig.json', 'tsconfig.build.json', 'package.json']) newest = Math.max(newest, fs.statSync(path.join(ROOT, file)).mtimeMs);
  return newest;
}

/** The newest source time the last build saw (kept in the stamp, not as its mtime, which would lose precision). */
function builtFrom() {
  try {
    return Number(fs.readFileSync(STAMP, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

const current = () => builtFrom() >= newestSource();

/** One build at a time: two launchers starting together would otherwise write the same files at once. */
function takeLock() {
  fs.mkdirSync(DIST, { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      return;
    } catch {
      let age = 0;
      try {
        age = Date.now() - fs.statSync(LOCK).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      if (age > STALE_LOCK_MS) fs.rmSync(LOCK, { recursive: true, force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // a blocking 200 ms pause: nothing else runs here
    }
  }
}

if (!current()) {
  takeLock();
  try {
    if (!current()) {
      const startedAt = Date.now();
      // The time read before compiling: a source saved during the build makes the next start build again.
      const sourcesAt = newestSource();
      process.stdout.write('[platform] compiling to dist/ (sources changed since the last build)\n');
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const result = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
      // tsc's 2: type errors, yet every file was emitted; tsx would have run them too, so the platform starts.
      if (result.status === 2) process.stderr.write('[platform] tsc found type errors (above); starting what it emitted\n');
      else if (result.status !== 0) {
        process.stderr.write('[platform] the build failed (above); nothing was started\n');
        process.exit(1);
      }
      fs.writeFileSync(STAMP, `${sourcesAt}\n`);
      process.stdout.write(`[platform] compiled in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
    }
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}
