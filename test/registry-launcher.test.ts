/**
 * The launcher's view of the truth (#18): a crashed worker that the launcher starts again leaves exactly
 * one instance of it, and a second `npm start` on the same data shows no ghost of the first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, freePort, getJson, tempDir, waitFor } from './helpers.ts';
import { launch } from '../harness/processes.ts';

const PLATFORM = path.join(ROOT, 'cmd/platform.ts');

interface Listed {
  instanceId: string;
  state: string;
  restarts: number;
  metadata: { pid: string };
}

test('a crashed worker restarted by the launcher is one instance, and a second start on the same data shows no ghost', { timeout: 300_000 }, async (t) => {
  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const dataDir = tempDir('launcher-ghost-');
  const start = () =>
    launch(process.execPath, ['--import', 'tsx', PLATFORM, '--services', 'registry,worker', '--ephemeral', '--port', `registry=${registryPort}`, '--data-dir', dataDir], {
      cwd: ROOT,
      env: { ...process.env, WORKER_CONCURRENCY: '1' },
    });
  const workers = async () => (await getJson(`${registryUrl}/services?name=imageworker`)).body.instances as Listed[];

  let launcher = start();
  t.after(() => launcher.kill());
  await launcher.waitUntilRunning(120_000);
  const [first] = (await waitFor(async () => {
    const list = await workers();
    return list.length === 1 && list[0].state === 'up' ? list : undefined;
  }, 'the worker to be up'))!;
  process.kill(Number(first.metadata.pid), 'SIGKILL');
  const restarted = (await waitFor(async () => {
    const list = await workers();
    return list.some((i) => i.metadata.pid !== first.metadata.pid && i.state === 'up') ? list : undefined;
  }, 'the launcher to start the worker again and it to register', 60_000))!;
  assert.deepEqual(restarted.map((i) => [i.state, i.restarts]), [['up', 1]], 'one instance: the restart took the crashed one\'s place');

  // Ctrl-C, and `npm start` again on the same data.
  launcher.child.kill('SIGINT');
  assert.equal(await launcher.exited, 0);
  launcher = start();
  await launcher.waitUntilRunning(120_000);
  const again = (await waitFor(async () => {
    const list = await workers();
    return list.length >= 1 && list.every((i) => i.state === 'up') ? list : undefined;
  }, 'the worker of the second start to be up', 60_000))!;
  assert.equal(again.length, 1, 'no ghost of the first start');
  const all = (await getJson(`${registryUrl}/services`)).body.instances as Listed[];
  assert.deepEqual(all.filter((i) => i.state !== 'up'), [], 'nothing down: every instance listed is a live process');
});
