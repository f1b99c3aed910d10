/**
 * `logs query`, `logs tail` and `logs labels` as a Loki user expects them: a level is a minimum, an
 * unknown level is refused in words, lines print in time order (the newest last), a request id's first
 * characters find its lines, and a service with no lines is said so on stderr, with those that have some.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { ROOT, startRegistry, waitFor } from './helpers.ts';
import { runCli, STACK_LINE } from './cliRunner.ts';
import { postLog, startLogService } from './fixtures/logs.ts';

const REQ = '5ab0c1d2-0000-4000-8000-000000000001';

test('logs query and logs tail: minimum levels, time order, request id prefixes, unknown services', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const log = await startLogService({ REGISTRY_URL: registry.url });
  t.after(() => log.stop());
  const env = { REGISTRY_URL: registry.url };
  const post = async (entries: object[]) => assert.equal((await postLog(log.url, JSON.stringify(entries), 'application/json')).status, 202);
  await post([
    { service: 'c-grades', level: 'error', message: 'second', time: '2025-04-01T10:00:02Z', requestId: REQ },
    { service: 'c-grades', level: 'info', message: 'third', time: '2025-04-01T10:00:03Z' },
  ]);
  await post([{ service: 'c-portal', level: 'warn', message: 'first', time: '2025-04-01T10:00:01Z', requestId: REQ }]);
  await waitFor(async () => (await runCli(['logs', 'query', '--limit', '1'], env)).code === 0, 'the CLI to find the log service');

  const warn = await runCli(['logs', 'query', '--level', 'warn'], env);
  assert.equal(warn.code, 0, warn.stderr);
  const printed = warn.stdout.trimEnd().split('\n');
  assert.deepEqual(printed.map((l) => / (first|second|third)$/.exec(l)?.[1]), ['first', 'second'], `warn and error, in time order:\n${warn.stdout}`);
  assert.match(printed[1], /^2025-04-01T10:00:02.000Z error \[c-grades\]/);

  const unknown = await runCli(['logs', 'query', '--level', 'warning'], env);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /level: unknown level "warning": the levels are error, warn, info, http, verbose, debug, silly/);
  assert.equal(unknown.stderr.trimEnd().split('\n').length, 1);
  assert.doesNotMatch(unknown.stderr, STACK_LINE);

  const byPrefix = await runCli(['logs', 'query', '--request-id', REQ.slice(0, 8)], env);
  assert.equal(byPrefix.code, 0, byPrefix.stderr);
  assert.deepEqual(byPrefix.stdout.trimEnd().split('\n').map((l) => / (first|second|third)$/.exec(l)?.[1]), ['first', 'second']);
  await post([{ service: 'c-grades', message: 'another request', requestId: '5ab0ffff-0000-4000-8000-000000000002' }]);
  const ambiguous = await runCli(['logs', 'query', '--request-id', '5ab0'], env);
  assert.equal(ambiguous.code, 1);
  assert.match(ambiguous.stderr, /requestId: "5ab0" is the start of 2 request ids .*give more of it/);

  const master = await runCli(['logs', 'query', '--service', 'master'], env);
  assert.equal(master.code, 0, 'an unknown service is not an error');
  assert.equal(master.stdout, 'no matching lines\n');
  assert.match(master.stderr, /^no lines from service "master"; the services with lines are: c-grades, c-portal\n$/);
  const json = await runCli(['--json', 'logs', 'query', '--service', 'master'], env);
  assert.deepEqual(JSON.parse(json.stdout).unknownServices, ['master'], 'stdout stays JSON');

  const labels = await runCli(['logs', 'labels'], env);
  assert.equal(labels.code, 0, labels.stderr);
  assert.match(labels.stdout, /^services: c-grades, c-portal\nlevels: +error, warn, info, http, verbose, debug, silly\n$/);

  const refused = await runCli(['logs', 'tail', '--level', 'warning'], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /the log service refused the tail \(400\): level: unknown level "warning"/);

  // The tail's level is a minimum too: an error reaches a tail of warn and worse, an info line does not.
  const tail = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), 'logs', 'tail', '--level', 'warn', '--service', 'c-grades,nosuch'], { cwd: ROOT, env: { ...process.env, ...env } });
  t.after(() => tail.kill('SIGKILL'));
  let tailed = '';
  let tailErr = '';
  tail.stdout.on('data', (chunk: Buffer) => (tailed += chunk.toString()));
  tail.stderr.on('data', (chunk: Buffer) => (tailErr += chunk.toString()));
  await waitFor(async () => {
    await post([{ service: 'c-grades', level: 'info', message: 'tail info' }, { service: 'c-grades', level: 'error', message: 'tail error' }]);
    return tailed.includes('tail error');
  }, 'the tail to print the error', 30_000, 500);
  tail.kill('SIGINT');
  await once(tail, 'exit');
  assert.doesNotMatch(tailed, /tail info/);
  assert.match(tailErr, /no lines from service "nosuch"; the services with lines are: c-grades, c-portal/);
});
