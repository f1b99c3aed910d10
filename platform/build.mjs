// @ts-check
/**
 * Bundles the platform to dist/cmd/ when a source is newer than the last build, so `npm start` runs plain
 * JavaScript: no tsx or esbuild in each service. One file per entry point (esbuild), with the code the entry
 * points share in dist/cmd/chunks/, and there too the modules imported on demand (the etcd, PostgreSQL and S3
 * modes), still read only when used. Node then resolves and reads a few files at start instead of several hundred: a service
 * took 190-260 ms of CPU until it listened, against 350-440 ms from tsc's one file per module (see
 * docs/benchmarks.md, platform footprint). Type errors are `npm test`'s (tsc) to find; a bundle is built
 * from what parses. Plain JavaScript itself, because it runs before anything is built. Exit 0: dist/ is
 * current; 1: the build failed (esbuild said why).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const OUT = path.join(DIST, 'cmd');
const STAMP = path.join(DIST, '.built');
const LOCK = path.join(DIST, '.building');
/** A lock older than this was left by a build that died. */
const STALE_LOCK_MS = 180_000;

/** Where the sources of the bundles are. */
const sourceDirs = ['cmd', 'platform', 'registry', 'shared', 'logservice', 'events', 'grades', 'imageservice'];
/** The entry points: each service and the launcher (the CLI runs through tsx: bin/switchboard.js). */
const ENTRIES = ['registry', 'logservice', 'events', 'grades', 'portal', 'storage', 'master', 'worker', 'frontend', 'platform'];
/**
 * Packages loaded from node_modules, not bundled: native addons (better-sqlite3, sharp), packages that find
 * their own files at run time (etcd3's protocol files, piscina's worker script), and the S3 and PostgreSQL
 * clients, used only in those modes.
 */
const EXTERNAL = ['better-sqlite3', 'sharp', 'etcd3', 'piscina', 'pg', '@aws-sdk/*'];
/** Modules that find a file beside their own (pool.ts its thread, launcher.ts the services): they must land in dist/cmd/ itself. */
const BESIDE_THEIR_FILES = ['imageservice/worker/pool.ts', 'platform/launcher.ts'];

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
  // The lock file too: the bundles hold the dependencies' code. And this file, which says how they are built.
  for (const file of ['tsconfig.json', 'package.json', 'package-lock.json', 'platform/build.mjs']) newest = Math.max(newest, fs.statSync(path.join(ROOT, file)).mtimeMs);
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

/** Builds every entry point; false when esbuild refused (it printed why). */
async function bundle() {
  const esbuild = await import('esbuild');
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: [...ENTRIES.map((name) => ({ in: `cmd/${name}.ts`, out: name })), { in: 'imageservice/worker/thread.ts', out: 'thread' }],
      outdir: OUT,
      chunkNames: 'chunks/[name]-[hash]',
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      external: EXTERNAL,
      // The CommonJS packages inside an ES module bundle call require(): give each output file one.
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
      metafile: true,
      logLevel: 'error',
    });
  } catch {
    return false; // esbuild has printed the errors
  }
  for (const source of BESIDE_THEIR_FILES) {
    const [output] = Object.entries(result.metafile.outputs).find(([, o]) => source in o.inputs) ?? [];
    if (output && path.dirname(path.join(ROOT, output)) !== OUT) {
      process.stderr.write(`[platform] ${source} landed in ${output}, not in dist/cmd/, so the files it finds beside it are not there\n`);
      return false;
    }
  }
  // What an earlier build left (chunks are named by their content, and tsc's tree by module) goes, once the new files are in place.
  const built = new Set(Object.keys(result.metafile.outputs).map((output) => path.join(ROOT, output)));
  for (const entry of fs.readdirSync(DIST, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && !built.has(file) && file !== STAMP) fs.rmSync(file);
  }
  for (const entry of fs.readdirSync(DIST, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name !== 'cmd' && entry.name !== path.basename(LOCK)) fs.rmSync(path.join(DIST, entry.name), { recursive: true, force: true });
  }
  return true;
}

let failed = false;
if (!current()) {
  takeLock();
  try {
    if (!current()) {
      const startedAt = Date.now();
      // The time read before compiling: a source saved during the build makes the next start build again.
      const sourcesAt = newestSource();
      process.stdout.write('[platform] building dist/ (sources changed since the last build)\n');
      failed = !(await bundle());
      if (!failed) {
        fs.writeFileSync(STAMP, `${sourcesAt}\n`);
        process.stdout.write(`[platform] built in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
      }
    }
  } finally {
    // Released before exiting, also after a failure: a lock left behind would hold the next start for STALE_LOCK_MS.
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}
if (failed) {
  process.stderr.write('[platform] the build failed (above); nothing was started\n');
  process.exit(1);
}
