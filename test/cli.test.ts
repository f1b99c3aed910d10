import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { startRegistry, startProcess, tempDir, getJson, freePort, waitFor, ROOT } from './helpers.ts';
import { runCli, STACK_LINE } from './cliRunner.ts';

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
