/** `npm start -- --registry-replicas N` with ETCD_ENDPOINTS: N replicas on consecutive ports, and every service is given them all. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, builtPlatform, getJson, tempDir, waitFor, freePort } from './helpers.ts';
import { launch } from '../harness/processes.ts';
import { skipUnlessEngine, startEtcd } from '../harness/etcd.ts';

const PLATFORM = path.join(ROOT, 'cmd/platform.ts');
const skip = skipUnlessEngine('etcd');

test('the launcher runs two registry replicas on etcd and gives every service both', { skip, timeout: 180_000 }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const port = await freePort();
  const urls = [`http://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`];
  const launcher = launch(
    process.execPath,
    [builtPlatform(), '--services', 'registry,grades', '--ephemeral', '--port', `registry=${port}`, '--registry-replicas', '2', '--data-dir', tempDir('launcher-')],
    { cwd: ROOT, env: { ...process.env, ETCD_ENDPOINTS: etcd.endpoints, HEARTBEAT_INTERVAL_MS: '200' } },
  );
  t.after(() => launcher.kill());
  await launcher.waitUntilRunning(120_000);
  for (const url of urls) {
    await waitFor(async () => (await getJson(`${url}/replicas`)).body.replicas?.length === 2, `${url} to see both replicas`);
    const { body } = await getJson(`${url}/services?name=grades`);
    assert.equal(body.instances.filter((i: { state: string }) => i.state === 'up').length, 1, `grades is listed by ${url}`);
  }
  const { body } = await getJson(`${urls[0]}/replicas`);
  assert.deepEqual(body.replicas.map((r: { id: string; url: string }) => [r.id, r.url]), [['registry-1', urls[0]], ['registry-2', urls[1]]]);
  const grades = (await getJson(`${urls[1]}/services?name=grades`)).body.instances[0];
  const environ = fs.readFileSync(`/proc/${grades.metadata.pid}/environ`, 'utf8').split('\0');
  assert.ok(environ.includes(`REGISTRY_URL=${urls.join(',')}`), 'grades was given both replicas');
  assert.match(launcher.output(), new RegExp(`registry\\s+-\\s[^\\n]*\\s2\\s+${urls[0]} ${urls[1]}`), 'the table lists both');

  launcher.child.kill('SIGTERM');
  assert.equal(await launcher.exited, 0, launcher.output().slice(-2000));
  assert.match(launcher.output(), /\[platform\s*\] SIGTERM: stopping 3 processes/);
});

test('--registry-replicas without ETCD_ENDPOINTS is refused with one line and exit 2', async () => {
  const env = { ...process.env };
  delete env.ETCD_ENDPOINTS;
  const run = launch(process.execPath, ['--import', 'tsx', PLATFORM, '--registry-replicas', '2'], { cwd: ROOT, env });
  assert.equal(await run.exited, 2);
  assert.match(run.output(), /--registry-replicas needs ETCD_ENDPOINTS/);
  assert.doesNotMatch(run.output(), /^\s+at /m);
});
