/** The tests' helpers: the shared harness (harness/, which the benchmarks use too) plus what only tests need. */
import path from 'node:path';
import { ROOT, builtEntry, startProcess, type Proc } from '../harness/processes.ts';
import { getJson } from '../harness/http.ts';

export { ROOT, startProcess, startRegistry, waitFor, tempDir, freePort, FAST_REGISTRY_ENV, type Proc, type StartOptions } from '../harness/processes.ts';
export { getJson, rawRequest, startStub, type ReceivedPatch, type Stub } from '../harness/http.ts';

/** The launcher as `npm start` runs it, with its services bundled: dist/ built by platform/build.mjs (or found current). */
export function builtPlatform(): string {
  return path.join(ROOT, builtEntry('platform'));
}

export async function startFixture(name: string, registryUrl: string, requires: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  return startProcess('test/fixtures/service.ts', {
    env: { NAME: name, REQUIRES: requires.join(','), REGISTRY_URL: registryUrl, ...env },
  });
}

export async function providersOf(proc: Proc): Promise<Record<string, string[]>> {
  return (await getJson(`${proc.url}/debug/providers`)).body.providers;
}
