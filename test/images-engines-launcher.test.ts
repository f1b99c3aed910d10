/**
 * `npm start -- --masters 2 --storage-nodes 2` on the shared engines (#14): tasks on a private PostgreSQL, images
 * on a private Swift (s3api). Both masters and both storage nodes register, and an image uploaded to either
 * master is transformed and read back through the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres } from '../harness/postgres.ts';
import { skipUnlessEngine, startSwift } from '../harness/swift.ts';
import { launch } from '../harness/processes.ts';
import { rgbaImage } from './fixtures/pngs.ts';
import { submit, waitForTask } from './fixtures/pipeline.ts';
import { ROOT, builtPlatform, freePort, getJson, tempDir, waitFor } from './helpers.ts';

const skip = skipUnlessEngine('postgres') || skipUnlessEngine('swift');

test('npm start -- --masters 2 --storage-nodes 2 on PostgreSQL and S3: every image uploaded to one master is done and read through the other', { skip, timeout: 300_000 }, async (t) => {
  const [pg, swift] = await Promise.all([startPostgres(), startSwift()]);
  t.after(() => Promise.all([pg.stop(), swift.stop()]));
  const databaseUrl = await pg.createDatabase('launcher');
  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const dataDir = tempDir('launcher-engines-');
  const launcher = launch(
    process.execPath,
    [
      builtPlatform(),
      '--services', 'registry,logservice,storage,master,worker', '--masters', '2', '--storage-nodes', '2', '--worker-concurrency', '2',
      '--ephemeral', '--port', `registry=${registryPort}`, '--data-dir', dataDir,
    ],
    { cwd: ROOT, env: { ...process.env, ...swift.blobStoreEnv('images-launcher'), TASK_STORE: 'postgres', DATABASE_URL: databaseUrl, HEARTBEAT_INTERVAL_MS: '200', HEARTBEAT_TIMEOUT_MS: '500' } },
  );
  t.after(() => launcher.kill());
  await launcher.waitUntilRunning(200_000);
  const up = async (name: string) => {
    const { body } = await getJson(`${registryUrl}/services?name=${name}`);
    return (body.instances as { state: string; serviceURL: string }[]).filter((i) => i.state === 'up').map((i) => i.serviceURL);
  };
  await waitFor(async () => (await up('imagemaster')).length === 2, 'two masters up');
  const masters = await up('imagemaster');
  assert.equal((await up('imagestorage')).length, 2);
  assert.match(launcher.output(), /^master\s+imagemaster\s+\d+ \d+\s+2\s/m);

  const ids: [number, number][] = [];
  for (let i = 0; i < 6; i++) {
    const res = await submit(masters[i % 2], rgbaImage(10 + i, 8, i + 1).png);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    ids.push([i % 2, res.body.id]);
  }
  for (const [at, id] of ids) {
    const other = masters[1 - at];
    await waitForTask(other, id, ['done'], 90_000);
    const result = await fetch(`${other}/tasks/${id}/result`);
    assert.equal(result.status, 200, `task ${id} through the other master`);
    assert.equal(result.headers.get('content-type'), 'image/png');
  }
  launcher.child.kill('SIGTERM');
  assert.equal(await launcher.exited, 0, launcher.output().slice(-3000));
});
