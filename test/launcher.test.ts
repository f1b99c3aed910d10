import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ROOT, getJson, tempDir, waitFor, freePort } from './helpers.ts';
import { runCli, SCRIPT_PATH, terminalAvailable } from './cliRunner.ts';
import { alive, descendants, launch } from '../harness/processes.ts';

const PLATFORM = path.join(ROOT, 'cmd/platform.ts');

interface PsRow {
  name: string;
  service: string;
  pid: number | null;
  state: string;
  restarts: number;
  lastExitCode: number | string | null;
}

test('the launcher restarts a crashed service visibly, platform ps shows it, and SIGTERM stops everything with exit 0', { timeout: 180_000 }, async (t) => {
  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const dataDir = tempDir('launcher-');
  const ps = async () => {
    const result = await runCli(['--json', 'platform', 'ps', '--data-dir', dataDir]);
    return { ...result, rows: result.stdout ? (JSON.parse(result.stdout) as { processes: PsRow[] }).processes : [] };
  };
  const launcher = launch(
    process.execPath,
    ['--import', 'tsx', PLATFORM, '--services', 'registry,grades', '--ephemeral', '--port', `registry=${registryPort}`, '--data-dir', dataDir],
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
  // Each process by the name it registers as, with its pid, printed when it starts and listed by platform ps.
  assert.match(output(), new RegExp(`^\\[platform\\] started grades \\(pid ${firstPid}\\)$`, 'm'));
  assert.match(output(), /^\[registry\] .*registry listening on/m);
  const before = await ps();
  assert.equal(before.code, 0, before.stderr);
  assert.deepEqual(before.rows.map((r) => [r.name, r.service, r.state, r.restarts]), [['registry', 'registry', 'up', 0], ['grades', 'grades', 'up', 0]]);
  assert.equal(before.rows[1].pid, firstPid);
  assert.ok(alive(before.rows[0].pid!), 'the registry\'s pid is a live process');
  const table = await runCli(['platform', 'ps', '--data-dir', dataDir]);
  assert.match(table.stdout, /^name\s+service\s+pid\s+state\s+restarts\s+uptime\s+last exit$/m);
  assert.match(table.stdout, new RegExp(`^grades\\s+grades\\s+${firstPid}\\s+up\\s+0\\s+\\d+s`, 'm'));
  process.kill(firstPid, 'SIGKILL');
  await waitFor(() => /\[platform\] grades exited \(\S+\); restarting in [\d.]+ s \(restart #1\)/.test(output()), 'the restart notice');
  await waitFor(() => output().includes('[platform] grades restarted'), 'the restart');
  const secondPid = await waitFor(async () => {
    const pid = await gradesPid();
    return pid && pid !== firstPid ? pid : undefined;
  }, 'the restarted grades to register', 60_000);
  assert.ok(alive(secondPid!));
  const after = await waitFor(async () => {
    const { rows } = await ps();
    const grades = rows.find((r) => r.name === 'grades');
    return grades && grades.pid === secondPid && grades.state === 'up' ? grades : undefined;
  }, 'platform ps to show the restarted grades');
  assert.equal(after!.restarts, 1);
  assert.equal(after!.lastExitCode, 'SIGKILL');

  const pids = descendants(launcher.child.pid!);
  assert.ok(pids.length >= 2);
  launcher.child.kill('SIGTERM');
  assert.equal(await launcher.exited, 0, output().slice(-2000));
  await waitFor(() => pids.every((pid) => !alive(pid)), 'every child to exit', 10_000);
  assert.match(output(), /\[platform\] SIGTERM: stopping 2 processes/);
  assert.match(output(), /\[platform\] everything has stopped/);
  // Afterwards it says the launcher is gone (exit 1), and shows what it last wrote: everything stopped.
  const gone = await ps();
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /the launcher \(pid \d+\) is not running/);
  assert.deepEqual(gone.rows.map((r) => [r.name, r.state, r.pid]), [['registry', 'stopped', null], ['grades', 'stopped', null]]);
});

test('platform ps without a platform says so on stderr with exit 1', async () => {
  const result = await runCli(['platform', 'ps', '--data-dir', tempDir('no-platform-')]);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^error: no platform has run with the data directory .*; give the one npm start was given with --data-dir\n$/);
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

test('on a terminal the prefixes are coloured; NO_COLOR and --no-color turn it off', { skip: !terminalAvailable() && 'needs script(1) (util-linux) for a terminal', timeout: 180_000 }, async (t) => {
  const start = async (env: Record<string, string>, extra: string[] = []) => {
    const registryPort = await freePort();
    const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
    const command = [process.execPath, '--import', 'tsx', PLATFORM, '--services', 'registry', '--port', `registry=${registryPort}`, '--data-dir', tempDir('launcher-tty-'), ...extra].map(quote).join(' ');
    // script(1) gives the launcher a terminal of its own, as a person's shell would.
    // CI set (as CI runs this) means no colour to node, whatever the terminal.
    const { NO_COLOR: _no, FORCE_COLOR: _force, CI: _ci, ...inherited } = process.env;
    const launcher = launch(SCRIPT_PATH, ['-qec', command, '/dev/null'], { cwd: ROOT, env: { ...inherited, TERM: 'xterm-256color', ...env } });
    t.after(() => launcher.kill());
    await launcher.waitUntilRunning(120_000);
    const output = launcher.output();
    launcher.kill();
    return output;
  };
  const coloured = await start({});
  assert.match(coloured, /\x1b\[90m\[platform\]\x1b\[39m started registry/, '[platform] in grey');
  assert.match(coloured, /\x1b\[36m\[registry\]\x1b\[39m \S+ info \[registry\] registry listening/, 'the registry in its colour');
  for (const [env, extra] of [[{ NO_COLOR: '1' }, []], [{}, ['--no-color']]] as [Record<string, string>, string[]][]) {
    const plain = await start(env, extra);
    assert.match(plain, /\[platform\] started registry/);
    assert.doesNotMatch(plain, /\x1b\[\d+m/, `no colour with ${JSON.stringify(env)} ${extra.join(' ')}`);
  }
});
