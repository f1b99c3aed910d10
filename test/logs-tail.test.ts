/**
 * The live tail's bound (shared/sseHub.ts): a reader that leaves more than 1 MiB unread is cut off
 * and told why; reconnecting with Last-Event-ID it gets exactly the lines it missed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from './helpers.ts';
import { metric, postLog, startLogService } from './fixtures/logs.ts';
import { RawEventReader } from './rawEventReader.ts';

test('a tail reader that stalls is cut off, told why, and resumes with Last-Event-ID without a gap or a repeat', async (t) => {
  const log = await startLogService();
  t.after(() => log.stop());
  const stream = `${log.url}/logs/stream?service=flood`;
  const stalled = new RawEventReader(stream, { reading: false });
  t.after(() => stalled.close());
  await waitFor(async () => (await metric(log.url, 'log_tail_streams')) === 1, 'the tail');

  // Batches of 500 lines of 1 kB, until the reader is past the cap (and the kernel's buffers).
  const text = 'x'.repeat(1000);
  let sent = 0;
  while ((await metric(log.url, 'log_tail_disconnects')) < 1) {
    assert.ok(sent < 20_000, `no cut-off after ${sent} lines of 1 kB`);
    const batch = Array.from({ length: 500 }, (_, i) => ({ service: 'flood', message: `${sent + i} ${text}` }));
    assert.equal((await postLog(log.url, JSON.stringify(batch), 'application/json')).status, 202);
    sent += 500;
  }
  assert.equal(await metric(log.url, 'log_tail_streams'), 0);

  stalled.read();
  await waitFor(() => stalled.ended, 'the cut-off stream to end');
  const reason = stalled.events.at(-1)!;
  assert.equal(reason.event, 'disconnect');
  assert.equal(JSON.parse(reason.data).reason, 'slow_reader');
  const before = stalled.named('message');
  assert.ok(before.length > 0 && before.length < sent, `${before.length} of ${sent} lines before the cut-off`);

  const resumed = new RawEventReader(stream, { lastEventId: before.at(-1)!.id });
  t.after(() => resumed.close());
  await waitFor(async () => (await metric(log.url, 'log_tail_streams')) === 1, 'the reconnect');
  const more = Array.from({ length: 10 }, (_, i) => ({ service: 'flood', message: `${sent + i} ${text}` }));
  assert.equal((await postLog(log.url, JSON.stringify(more), 'application/json')).status, 202);
  sent += 10;
  await waitFor(() => before.length + resumed.named('message').length >= sent, 'the resumed reader to catch up');
  const numbers = [...before, ...resumed.named('message')].map((e) => Number(JSON.parse(e.data).message.split(' ')[0]));
  assert.deepEqual(numbers, Array.from({ length: sent }, (_, i) => i));
  assert.equal(resumed.named('dropped').length, 0, 'nothing was lost: no dropped notice');
  assert.equal(await metric(log.url, 'log_tail_dropped_lines'), 0);
});
