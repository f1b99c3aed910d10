import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ROOT, getJson, tempDir, waitFor, freePort } from './helpers.ts';
import { alive, descendants, launch } from '../harness/processes.ts';

const PLATFORM = path.join(ROOT, 'cmd/platform.ts');

test('the launcher restarts a crashed service visibly, and SIGTERM stops everything with exit 0', { timeout: 180_000 }, async (t) => {
  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const launcher = launch(
    process.execPath,
    ['--import', 'tsx', PLATFORM, '--services', 'registry,grades', '--ephemeral', '--port', `registry=${registryPort}`, '--data-dir', tempDir('launcher-')],
    { cwd: ROOT, env: { ...process.env, HEARTBEAT_INTERVAL_MS: '200', HEARTBEAT_TIMEOUT_MS: '500' } },
  );
  t.after(() => launcher.kill());
  await launcher.waitUntilRunning(120_000);
  const output = launcher.output;
  const gradesPid = async () => {
    const { body } = await getJson(`${registryUrl}/services?name=grades`);
    const up = (body.instances as { state: string; metadata: { pid: string } }[]).filter((i) => i.state === 'up');
    return up.length === 1 ? Number(up[0].metadata.pid) : undefined;
  };
  const firstPid = (await waitFor(gradesPid, 'grades registered'))!;
  process.kill(firstPid, 'SIGKILL');
  await waitFor(() => /\[platform\] grades exited \(\S+\); restarting in [\d.]+ s \(restart #1\)/.test(output()), 'the restart notice');
  await waitFor(() => output().includes('[platform] grades restarted'), 'the restart');
  const secondPid = await waitFor(async () => {
    const pid = await gradesPid();
    return pid && pid !== firstPid ? pid : undefined;
  }, 'the restarted grades to register', 60_000);
  assert.ok(alive(secondPid!));

  const pids = descendants(launcher.child.pid!);
  assert.ok(pids.length >= 2);
  launcher.child.kill('SIGTERM');
  assert.equal(await launcher.exited, 0, output().slice(-2000));
  await waitFor(() => pids.every((pid) => !alive(pid)), 'every child to exit', 10_000);
  assert.match(output(), /\[platform\] SIGTERM: stopping 2 processes/);
  assert.match(output(), /everything has stopped/);
});

test('the launcher refuses bad flags with a clear message and exit code 2', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, ['--import', 'tsx', PLATFORM, ...args], { cwd: ROOT, timeout: 60_000 }, (err, _stdout, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stderr }),
      ),
    );
  const cases: [string[], RegExp][] = [
    [['--services', 'registry,nope'], /unknown service "nope"/],
    [['--port', 'grades=abc'], /--port grades=abc: expected <service>=<port>/],
    [['--port', 'registry=70000'], /bad port for registry: 70000/],
    [['--workers', '-1'], /--workers must be a whole number/],
  ];
  for (const [args, pattern] of cases) {
    const result = await run(args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr, /^\s+at /m);
  }
});
