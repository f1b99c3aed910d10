import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, startProcess, tempDir, getJson, freePort } from './helpers.ts';
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
