/**
 * Which real engines this machine has, for the tests that start private instances of them. Without a binary
 * those tests are skipped with one line naming the Debian install command, unless REQUIRE_ENGINES=1 (CI), which
 * turns a missing engine into a failure.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export type Engine = 'etcd' | 'postgres' | 'swift';

/** Debian 12's PostgreSQL 15 keeps its server binaries here, off PATH. */
export const PG_BIN = '/usr/lib/postgresql/15/bin';

const INSTALL: Record<Engine, string> = {
  etcd: 'apt-get install etcd-server',
  postgres: 'apt-get install postgresql',
  swift: 'apt-get install swift swift-proxy swift-object swift-container swift-account python3-swift',
};

const announced = new Set<Engine>();

function onPath(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

export function hasEngine(engine: Engine): boolean {
  if (engine === 'postgres') return fs.existsSync(`${PG_BIN}/postgres`) && fs.existsSync(`${PG_BIN}/initdb`);
  if (engine === 'swift') {
    // The four servers, the ring builder and Debian's python3-swift (s3api), which harness/swift.ts runs with /usr/bin/python3.
    const servers = ['proxy', 'account', 'container', 'object'].every((kind) => onPath(`swift-${kind}-server`));
    return servers && onPath('swift-ring-builder') && fs.existsSync('/usr/lib/python3/dist-packages/swift/common/middleware/s3api');
  }
  return onPath('etcd');
}

/** The install command that brings `engine`, for error messages. */
export function installCommand(engine: Engine): string {
  return INSTALL[engine];
}

/**
 * For `test(name, { skip: skipUnlessEngine('etcd') }, …)`: a reason to skip when the engine is not installed
 * (said once, on one line, with the install command), or false. With REQUIRE_ENGINES=1 (CI) it never skips:
 * the test runs and fails on the missing binary.
 */
export function skipUnlessEngine(engine: Engine): string | false {
  if (hasEngine(engine)) return false;
  const reason = `${engine} is not installed (${INSTALL[engine]})`;
  if (process.env.REQUIRE_ENGINES === '1') return false;
  if (!announced.has(engine)) process.stderr.write(`skipping the ${engine} tests: ${reason}\n`);
  announced.add(engine);
  return reason;
}
