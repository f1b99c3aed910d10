/** `events publish | tail | subscribers` from the admin CLI, against real processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT, rawRequest, startRegistry, waitFor } from './helpers.ts';
import { runCli, STACK_LINE } from './cliRunner.ts';
import { metricValue, startEventsService, startRecorder } from './events-helpers.ts';

test('events publish, tail and subscribers; bad input is refused in one line; stored text cannot drive the terminal', { timeout: 180_000 }, async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const env = { REGISTRY_URL: registry.url };
  const missing = await runCli(['events', 'subscribers'], env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no instance of "events" is up/);

  const events = await startEventsService(registry.url, { EVENTS_KEEPALIVE_MS: '60000' });
  t.after(() => events.stop());
  await waitFor(async () => (await runCli(['events', 'subscribers'], env)).stdout.includes('no subscribers'), 'the events service to be registered', 30_000);

  const tail = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), 'events', 'tail', '--topic', 'cli.*'], { cwd: ROOT, env: { ...process.env, ...env } });
  let tailed = '';
  tail.stdout.on('data', (chunk) => (tailed += chunk));
  tail.stderr.on('data', (chunk) => (tailed += chunk));
  t.after(() => tail.kill('SIGKILL'));
  await waitFor(async () => (await metricValue(events.url, 'events_tail_streams')) === 1, 'the tail to connect', 30_000);

  const published = await runCli(['events', 'publish', 'cli.hello', JSON.stringify({ msg: 'hi', evil: 'red\u001b[31m and \u009b2J' })], env);
  assert.equal(published.code, 0, published.stderr);
  assert.match(published.stdout, /^published cli\.hello #1 \(id \d+\)$/m);
  await runCli(['events', 'publish', 'other.topic', '1'], env);
  await runCli(['events', 'publish', 'cli.second', '"plain text"'], env);
  await waitFor(() => tailed.includes('cli.second'), 'the tail to show the events');
  const lines = tailed.trim().split('\n');
  assert.equal(lines.length, 2, tailed);
  assert.match(lines[0], /cli\.hello #1 \(id \d+\) \{"msg":"hi"/);
  assert.match(lines[1], /cli\.second #1 \(id \d+\) "plain text"/);
  assert.doesNotMatch(tailed, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'no raw control character reaches the terminal');
  tail.kill('SIGINT');

  const recorder = await startRecorder();
  t.after(() => recorder.close());
  await rawRequest(`${events.url}/registerAndKeepAlive?address=${recorder.address}&topics=cli.*`, { method: 'POST' });
  const listing = await runCli(['events', 'subscribers'], env);
  assert.equal(listing.code, 0, listing.stderr);
  assert.match(listing.stdout, new RegExp(`address\\s+broadcast\\s+${recorder.address}\\s+cli\\.\\*\\s+up`));
  const json = await runCli(['--json', 'events', 'subscribers'], env);
  assert.equal(JSON.parse(json.stdout)[0].target, recorder.address);

  for (const [args, pattern] of [
    [['events', 'publish', 'bad topic', '{}'], /topic must be dot-separated words/],
    [['events', 'publish', 'cli.ok', 'not json'], /the payload is not JSON/],
    [['events', 'tail', '--topic', 'a b'], /--topic a b: must be dot-separated/],
  ] as const) {
    const result = await runCli([...args], env);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stdout}`);
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  }
});
