import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { startRegistry, startProcess, startFixture, tempDir, getJson, freePort, waitFor, ROOT } from './helpers.ts';
import { runCli, runCliInTerminal, runNpx, runProgram, terminalAvailable, STACK_LINE } from './cliRunner.ts';
import { startStorageProc, startMasterProc, startWorkerProc, stopAll } from './fixtures/pipeline.ts';
import { rgbaImage } from './fixtures/pngs.ts';

test('the CLI says clearly when the registry is unreachable, with a non-zero exit and no stack trace', async () => {
  const port = await freePort();
  for (const args of [['services', 'list'], ['grades', 'list'], ['logs', 'query'], ['tasks', 'list']]) {
    const result = await runCli(args, { REGISTRY_URL: `http://127.0.0.1:${port}` });
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, new RegExp(`cannot reach the registry at http://127.0.0.1:${port}`));
    assert.doesNotMatch(result.stderr + result.stdout, STACK_LINE);
  }
});

test('the CLI names the missing service, rejects bad input before sending it, and works once the service is up', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const env = { REGISTRY_URL: registry.url };

  const missing = await runCli(['grades', 'list'], env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no instance of "grades" is up/);

  const grades = await startProcess('cmd/grades.ts', { env: { REGISTRY_URL: registry.url, DATA_DIR: tempDir('cli-grades-') } });
  t.after(() => grades.stop());
  const before = (await getJson(`${grades.url}/students/1`)).body;

  for (const [args, pattern] of [
    [['grades', 'add', '1', '--title', 'Exam', '--type', 'Essay', '--score', '90'], /--type must be one of Test, Homework, Quiz/],
    [['grades', 'add', '1', '--title', 'Exam', '--type', 'Test', '--score', 'abc'], /--score must be a number/],
    [['grades', 'add', '1', '--title', 'Exam', '--type', 'Test', '--score', '101'], /--score must be between 0 and 100/],
    [['grades', 'add', 'x', '--title', 'Exam', '--type', 'Test', '--score', '50'], /studentId must be a whole number/],
    [['grades', 'add', '1', '--title', 'Exam'], /required option '--type <type>' not specified/],
    [['grades', 'add', '999', '--title', 'Exam', '--type', 'Test', '--score', '50'], /no student with id 999/],
    [['services', 'deregister', 'no-such-instance'], /no registered instance with id no-such-instance/],
    [['services', 'frobnicate'], /unknown command 'frobnicate'/],
  ] as const) {
    const result = await runCli([...args], env);
    assert.notEqual(result.code, 0, `${args.join(' ')} should fail`);
    assert.match(result.stderr, pattern, args.join(' '));
    assert.doesNotMatch(result.stderr + result.stdout, STACK_LINE);
  }
  assert.deepEqual((await getJson(`${grades.url}/students/1`)).body, before, 'no bad input reached the store');

  const added = await runCli(['grades', 'add', '1', '--title', 'Exam', '--type', 'test', '--score', '100'], env);
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /added Test "Exam" \(100\) to Averill Simen/);
  const listed = await runCli(['--json', 'grades', 'list'], env);
  const students = JSON.parse(listed.stdout) as { id: number; grades: { title: string }[] }[];
  assert.ok(students.find((s) => s.id === 1)!.grades.some((g) => g.title === 'Exam'));

  const services = await runCli(['--json', 'services', 'list'], env);
  assert.equal(services.code, 0);
  assert.deepEqual((JSON.parse(services.stdout) as { serviceName: string }[]).map((s) => s.serviceName), ['grades']);
  const table = await runCli(['services', 'list'], env);
  assert.match(table.stdout, new RegExp(`grades\\s+up\\s+${grades.url.replace(/[.]/g, '\\.')}`));
});

test('services list says since when and why an instance is down, and counts restarts', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const env = { REGISTRY_URL: registry.url };
  const victim = await startFixture('victim', registry.url);
  await waitFor(async () => /victim\s+up/.test((await runCli(['services', 'list'], env)).stdout), 'victim to be listed up');
  await victim.stop('SIGKILL');
  const down = await waitFor(async () => {
    const listed = await runCli(['services', 'list', '--name', 'victim'], env);
    return /victim\s+down/.test(listed.stdout) ? listed.stdout : undefined;
  }, 'victim to be listed down');
  const [header, , row] = down!.trim().split('\n');
  assert.match(header, /down since\s+restarts/);
  assert.match(row, /\d+s ago connection_(refused|reset)\s+0\s/, row);
});

test('logs query and logs tail print control characters from the store as escapes, never raw', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const log = await startProcess('cmd/logservice.ts', { env: { REGISTRY_URL: registry.url, DATA_DIR: tempDir('cli-escapes-') } });
  t.after(() => log.stop());
  const env = { REGISTRY_URL: registry.url };
  await waitFor(async () => (await runCli(['logs', 'query', '--limit', '1'], env)).code === 0, 'the CLI to find the log service');
  // A message that would print a forged line of its own, retitle the window, clear the screen and colour the rest.
  const forged = 'seen\r\n2025-01-01T00:00:00.000Z error [registry] forged: registry is down\x1b]0;owned\x07\x1b[2J\x1b[31mred\u009b1m\x7f end';
  const post = (message: string, service: string) =>
    fetch(`${log.url}/log`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service, level: 'info', message }), signal: AbortSignal.timeout(10_000) });
  assert.equal((await post(`marker-1 ${forged}`, 'evil\x1b[8m')).status, 202);
  const rawControl = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

  const query = await runCli(['logs', 'query', '-q', 'marker-1'], env);
  assert.equal(query.code, 0, query.stderr);
  assert.doesNotMatch(query.stdout, rawControl);
  const lines = query.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one entry, one line: ${JSON.stringify(query.stdout)}`);
  for (const shown of ['[evil\\x1b[8m]', 'seen\\r\\n2025-01-01T00:00:00.000Z error [registry] forged', '\\x1b]0;owned\\x07', '\\x1b[2J\\x1b[31mred', '\\u009b1m\\x7f end']) {
    assert.ok(lines[0].includes(shown), `${shown} in ${lines[0]}`);
  }

  // --json is valid JSON with the same text, and escapes DEL and C1 too (JSON.stringify leaves them raw).
  const json = await runCli(['--json', 'logs', 'query', '-q', 'marker-1'], env);
  assert.equal(json.code, 0, json.stderr);
  assert.doesNotMatch(json.stdout, rawControl);
  assert.equal(JSON.parse(json.stdout).entries[0].message, `marker-1 ${forged}`);

  const tail = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), 'logs', 'tail', '-q', 'marker-2'], { cwd: ROOT, env: { ...process.env, ...env } });
  t.after(() => tail.kill('SIGKILL'));
  let tailed = '';
  tail.stdout.on('data', (chunk: Buffer) => (tailed += chunk.toString()));
  // The tail is open once a line posted now reaches it: post until one does (the first may come before it subscribed).
  await waitFor(async () => {
    await post(`marker-2 ${forged}`, 'evil');
    return tailed.includes('marker-2');
  }, 'the tail to print the line', 30_000, 500);
  tail.kill('SIGINT');
  await once(tail, 'exit');
  assert.doesNotMatch(tailed, rawControl);
  assert.ok(tailed.split('\n').every((l) => l === '' || l.includes('marker-2')), `every printed line is one entry: ${JSON.stringify(tailed)}`);
  assert.ok(tailed.includes('\\x1b]0;owned\\x07'));
});

test('services list --name with no instance says so on stderr and exits 1, whether other services are registered or none', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const env = { REGISTRY_URL: registry.url };
  const expectRefusal = async (args: string[]) => {
    const result = await runCli(args, env);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
    assert.equal(result.stderr, 'error: no instance of "nosuch" is registered\n');
    assert.equal(result.stdout, '', 'nothing on stdout for a script to mistake for an answer');
  };
  await expectRefusal(['services', 'list', '--name', 'nosuch']);
  const alpha = await startFixture('alpha', registry.url);
  t.after(() => alpha.stop());
  await waitFor(async () => (await runCli(['services', 'list', '--name', 'alpha'], env)).code === 0, 'alpha to be listed');
  await expectRefusal(['services', 'list', '--name', 'nosuch']);
  await expectRefusal(['--json', 'services', 'list', '--name', 'nosuch']);

  // The package's bin prints only the CLI's own output, so `npx switchboard --json … | jq` gets JSON alone.
  const viaNpx = await runNpx(['--json', 'services', 'list'], env);
  assert.equal(viaNpx.code, 0, viaNpx.stderr);
  assert.deepEqual((JSON.parse(viaNpx.stdout) as { serviceName: string }[]).map((i) => i.serviceName), ['alpha']);
  // Without "--", npx takes options before the first word as its own: after it, they are the CLI's.
  const optionsAfter = await runProgram('npx', ['--no', 'switchboard', 'services', 'list', '--json'], env);
  assert.equal(optionsAfter.code, 0, optionsAfter.stderr);
  assert.deepEqual((JSON.parse(optionsAfter.stdout) as { serviceName: string }[]).map((i) => i.serviceName), ['alpha']);
  const missingViaNpx = await runNpx(['services', 'list', '--name', 'nosuch'], env);
  assert.equal(missingViaNpx.code, 1);
  assert.match(missingViaNpx.stderr, /no instance of "nosuch" is registered/);
});

test('--version prints the version in package.json, and every /health carries it with a build', async (t) => {
  const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const result of [await runCli(['--version']), await runNpx(['--version'])]) {
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${version}\n`);
  }
  const command = await runNpx(['version']);
  assert.match(command.stdout, new RegExp(`^switchboard ${version.replace(/\./g, '\\.')}, build \\S+\n$`));
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const alpha = await startFixture('alpha', registry.url);
  t.after(() => alpha.stop());
  for (const url of [registry.url, alpha.url]) {
    const { body } = await getJson(`${url}/health`);
    assert.equal(body.version, version, url);
    assert.match(body.build, /^([0-9a-f]{12}|\d+\.\d+\.\d+.*)$/, `${url}: a commit or the version`);
  }
  const built = await startFixture('beta', registry.url, [], { SWITCHBOARD_BUILD: 'ci-1234' });
  t.after(() => built.stop());
  assert.equal((await getJson(`${built.url}/health`)).body.build, 'ci-1234');
});

test('a usage mistake prints its one line and where --help is, not the whole usage', async () => {
  const env = { REGISTRY_URL: `http://127.0.0.1:${await freePort()}` };
  for (const [args, line, help] of [
    [['grades', 'add', '1', '--title', 'Exam'], "error: required option '--type <type>' not specified", 'switchboard grades add --help'],
    [['services', 'list', '--frob'], "error: unknown option '--frob'", 'switchboard services list --help'],
    [['frobnicate'], "error: unknown command 'frobnicate'", 'switchboard --help'],
  ] as const) {
    const result = await runCli([...args], env);
    assert.equal(result.code, 1, args.join(' '));
    assert.equal(result.stdout, '');
    assert.deepEqual(result.stderr.trimEnd().split('\n'), [line, `(see "${help}" for usage)`], args.join(' '));
  }
});

test('images submit says in words that a folder holds no PNG or a path does not exist, and exits 1 with no job made', async () => {
  const dir = tempDir('cli-submit-');
  fs.mkdirSync(path.join(dir, 'photos'));
  const env = { REGISTRY_URL: `http://127.0.0.1:${await freePort()}` };
  const state = ['--state', path.join(dir, 'state')];
  const folder = await runCli(['images', 'submit', path.join(dir, 'photos'), ...state], env);
  assert.equal(folder.code, 1);
  assert.equal(folder.stderr, `error: no PNG files to upload in ${path.join(dir, 'photos')}; no job was created\n`);
  const missing = await runCli(['images', 'submit', path.join(dir, 'missing.png'), ...state], env);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, `error: no such file or folder: ${path.join(dir, 'missing.png')}\n`);
  const both = await runCli(['images', 'submit', path.join(dir, 'photos'), path.join(dir, 'missing.png'), path.join(dir, 'gone'), ...state], env);
  assert.match(both.stderr, /no such file or folder: .*missing\.png; no such file or folder: .*gone/);
  for (const result of [folder, missing, both]) assert.doesNotMatch(result.stderr, /EISDIR|ENOENT/);
});

test('on a terminal the state words are coloured; NO_COLOR, --no-color and a pipe get plain text', { skip: !terminalAvailable() && 'no script(1)' }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const alpha = await startFixture('alpha', registry.url);
  t.after(() => alpha.stop());
  const env = { REGISTRY_URL: registry.url };
  await waitFor(async () => (await runCli(['services', 'list', '--name', 'alpha'], env)).code === 0, 'alpha to be listed');
  const coloured = await runCliInTerminal(['services', 'list'], env);
  assert.equal(coloured.code, 0, coloured.stdout);
  assert.ok(coloured.stdout.includes('\x1b[32mup\x1b[39m'), JSON.stringify(coloured.stdout));
  // The colour codes don't count as width: the url column starts where its header does.
  const [header, , row] = coloured.stdout.replace(/\x1b\[\d+m/g, '').split(/\r?\n/);
  assert.equal(row.indexOf('http://'), header.indexOf('url'));
  for (const plain of [
    await runCliInTerminal(['services', 'list'], { ...env, NO_COLOR: '1' }),
    await runCliInTerminal(['--no-color', 'services', 'list'], env),
    await runCli(['services', 'list'], { ...env, FORCE_COLOR: '1' }),
  ]) {
    assert.equal(plain.code, 0);
    assert.match(plain.stdout, /alpha\s+up\s+http/);
    assert.doesNotMatch(plain.stdout, /\x1b\[/);
  }
});

test('images submit draws the job\'s bar from the first frame (tasks, bytes sent, rate, ETA), and the | column never moves', { skip: !terminalAvailable() && 'no script(1)' }, async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  t.after(() => stopAll(worker, master, storage, registry));
  const dir = tempDir('cli-bars-');
  fs.writeFileSync(path.join(dir, 'a.png'), rgbaImage(300, 200, 1).png);
  fs.writeFileSync(path.join(dir, 'b.png'), rgbaImage(40, 30, 2).png);
  await waitFor(async () => (await runCli(['services', 'list', '--name', 'imageworker'], { REGISTRY_URL: registry.url })).code === 0, 'a worker');
  const result = await runCliInTerminal(['images', 'submit', path.join(dir, 'a.png'), path.join(dir, 'b.png'), '--out', dir, '--state', path.join(dir, 'state')], { REGISTRY_URL: registry.url });
  assert.equal(result.code, 0, result.stdout);
  // Each frame of the job's one bar, between cursor moves and line ends.
  const drawn = result.stdout.split(/\r\n|\r|\n|\x1b\[[0-9;?]*[A-Za-z]/).filter((piece) => piece.includes(' | '));
  assert.ok(drawn.length >= 2, JSON.stringify(result.stdout));
  assert.match(drawn[0], /^ \S+ 0\/2 tasks \| [\d.]+ k?B of [\d.]+ kB sent \| 0\.0 images\/s \| ETA \?$/, 'the first frame: none done yet');
  assert.ok(drawn.some((line) => /^ \S+ 2\/2 tasks \| [\d.]+ kB of [\d.]+ kB sent \| [\d.]+ images\/s \| ETA 0s$/.test(line)), `then both done: ${JSON.stringify(drawn)}`);
  const columns = new Set(drawn.map((line) => line.indexOf('|')));
  assert.equal(columns.size, 1, `the | column moved: ${JSON.stringify(drawn)}`);
  assert.match(result.stdout, /job \d+ "a-swap-rg-\w+" \(swap-rg\): 2 done, 0 failed, 0 skipped; results in /);
  assert.ok(fs.existsSync(path.join(dir, 'a.swap-rg.png')) && fs.existsSync(path.join(dir, 'b.swap-rg.png')));
});
