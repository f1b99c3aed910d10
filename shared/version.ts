/** The platform's version (package.json) and build (the git commit it runs from), for --version and /health. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface VersionInfo {
  version: string;
  /** SWITCHBOARD_BUILD, else the commit checked out at start (12 hex digits), else the version. */
  build: string;
}

let cached: VersionInfo | undefined;

/** Read once per process: the files don't change under a running service, and /health must stay cheap. */
export function versionInfo(): VersionInfo {
  if (cached) return cached;
  // Walked up from here, so it works from the sources (shared/) and from a build (dist/shared/) alike.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  let version = '0.0.0';
  for (;;) {
    const manifest = readText(path.join(dir, 'package.json'));
    if (manifest !== undefined) {
      version = (JSON.parse(manifest) as { version?: string }).version ?? version;
      break;
    }
    if (path.dirname(dir) === dir) break;
    dir = path.dirname(dir);
  }
  cached = { version, build: process.env.SWITCHBOARD_BUILD || gitCommit(dir) || version };
  return cached;
}

/** The checked-out commit, read from .git without spawning git (a worktree's .git is a file naming its folder). */
function gitCommit(root: string): string | undefined {
  let gitDir = path.join(root, '.git');
  const pointer = readText(gitDir);
  if (pointer?.startsWith('gitdir:')) gitDir = path.resolve(root, pointer.slice(7).trim());
  const head = readText(path.join(gitDir, 'HEAD'))?.trim();
  if (!head) return undefined;
  let sha: string | undefined = head;
  if (head.startsWith('ref:')) {
    const ref = head.slice(4).trim();
    // A ref lives in its own file, or (after git gc) in packed-refs, or, in a worktree, in the common folder.
    const common = readText(path.join(gitDir, 'commondir'))?.trim();
    const dirs = [gitDir, ...(common ? [path.resolve(gitDir, common)] : [])];
    sha = dirs.map((d) => readText(path.join(d, ref))?.trim()).find(Boolean)
      ?? dirs.map((d) => readText(path.join(d, 'packed-refs'))?.split('\n').find((line) => line.endsWith(` ${ref}`))?.split(' ')[0]).find(Boolean);
  }
  return sha && /^[0-9a-f]{40,64}$/.test(sha) ? sha.slice(0, 12) : undefined;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
