/** The log service on its own: the POST /log formats, bad and oversize bodies, repeats, and SIGTERM. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { getJson, tempDir, waitFor } from './helpers.ts';
import { countBy, postLog, startLogService, storedLines } from './fixtures/logs.ts';

let log: Awaited<ReturnType<typeof startLogService>>;

before(async () => {
  log = await startLogService({ LOG_BODY_LIMIT: String(64 * 1024) });
});
after(async () => {
  await log?.stop();
});

/** Lines of one (test-unique) service, from GET /logs. */
async function linesOf(service: string, limit = 1000) {
  const res = await getJson(`${log.url}/logs?service=${service}&limit=${limit}`);
  assert.equal(res.status, 200);
  return res.body.entries as any[];
}

test('plain text in the reference Go format: [ServiceName] - message', async () => {
  const res = await postLog(log.url, '[GoGrades] - a grade was added\n', 'text/plain');
  assert.equal(res.status, 202);
  assert.deepEqual(res.body, { accepted: 1 });
  const [entry] = await linesOf('GoGrades');
  assert.equal(entry.message, 'a grade was added');
  assert.equal(entry.level, 'info');
  assert.ok(Date.parse(entry.receivedAt) > 0, 'stamped receivedAt');
  assert.equal(typeof entry.seq, 'number');

  // No prefix: the service comes from the caller (here its X-Service-Name header).
  const bare = await postLog(log.url, 'no prefix here', 'text/plain', { 'x-service-name': 'bare-text' });
  assert.equal(bare.status, 202);
  assert.equal((await linesOf('bare-text'))[0].message, 'no prefix here');
});

test('JSON: one entry, an array, Go-style field names, and NDJSON', async () => {
  const one = await postLog(
    log.url,
    JSON.stringify({ time: '2024-05-01T10:00:00Z', level: 'warn', service: 'json-one', message: 'disk at 91%', requestId: 'r-1', disk: 'sda' }),
    'application/json',
  );
  assert.equal(one.status, 202);
  assert.equal(one.body.accepted, 1);
  const [entry] = await linesOf('json-one');
  assert.equal(entry.time, '2024-05-01T10:00:00.000Z');
  assert.equal(entry.level, 'warn');
  assert.equal(entry.requestId, 'r-1');
  assert.equal(entry.disk, 'sda', 'metadata is kept');

  const array = await postLog(
    log.url,
    JSON.stringify([
      { service: 'json-array', message: 'first' },
      { Service: 'json-array', Message: 'second', Level: 'ERROR' },
      { service: 'json-array', message: 'third', time: 1714557600000 },
    ]),
    'application/json',
  );
  assert.equal(array.status, 202);
  assert.equal(array.body.accepted, 3);
  const arrayLines = await linesOf('json-array');
  assert.deepEqual(arrayLines.map((e) => e.message), ['third', 'first', 'second'], 'in time order: the line from 2024 first');
  assert.equal(arrayLines[2].level, 'error');
  assert.equal(arrayLines[0].time, '2024-05-01T10:00:00.000Z');

  const ndjson = await postLog(
    log.url,
    ['{"service":"ndjson","message":"a"}', '', '{"service":"ndjson","message":"b","user":7}', '{"service":"ndjson","message":"c"}', ''].join('\n'),
    'application/x-ndjson',
  );
  assert.equal(ndjson.status, 202);
  assert.equal(ndjson.body.accepted, 3);
  assert.deepEqual((await linesOf('ndjson')).map((e) => e.message), ['a', 'b', 'c']);
});

test('malformed lines: a 400 names each bad line, says what was accepted, and the good lines are stored', async () => {
  const array = await postLog(
    log.url,
    JSON.stringify([
      { service: 'bad-array', message: 'good 1' },
      { service: 'bad-array', text: 'no message' },
      { service: 'bad-array', message: 'good 2' },
      { service: 'bad-array', message: 'bad time', time: 'yesterday-ish' },
      'not an object',
    ]),
    'application/json',
  );
  assert.equal(array.status, 400);
  assert.equal(array.body.error.code, 'invalid_lines');
  assert.match(array.body.error.message, /line 2: message: is required/);
  assert.match(array.body.error.message, /line 4: time/);
  assert.match(array.body.error.message, /line 5: must be a JSON object/);
  assert.match(array.body.error.message, /Accepted 2 of 5 lines/);
  assert.equal(array.body.accepted, 2);
  assert.deepEqual(array.body.rejected.map((r: any) => r.line), [2, 4, 5]);
  assert.deepEqual((await linesOf('bad-array')).map((e) => e.message), ['good 1', 'good 2']);

  const ndjson = await postLog(
    log.url,
    '{"service":"bad-ndjson","message":"one"}\n{"service":"bad-ndjson","message":\n{"service":"bad-ndjson","message":"three"}\n',
    'application/x-ndjson',
  );
  assert.equal(ndjson.status, 400);
  assert.match(ndjson.body.error.message, /line 2: not valid JSON/);
  assert.equal(ndjson.body.accepted, 2);
  assert.deepEqual((await linesOf('bad-ndjson')).map((e) => e.message), ['one', 'three']);

  // A body that isn't JSON at all: nothing can be accepted, and nothing is.
  const broken = await postLog(log.url, '[{"service":"bad-json","message":"x"},', 'application/json');
  assert.equal(broken.status, 400);
  assert.equal(broken.body.error.code, 'malformed_json');
  assert.deepEqual(await linesOf('bad-json'), []);

  for (const type of ['text/plain', 'application/json', 'application/x-ndjson']) {
    const empty = await postLog(log.url, '', type);
    assert.equal(empty.status, 400, type);
    assert.equal(empty.body.error.code, 'empty_body', type);
  }
  const emptyMessage = await postLog(log.url, '[empty-msg] - ', 'text/plain');
  assert.equal(emptyMessage.status, 400);
  assert.match(emptyMessage.body.error.message, /line 1: the message is empty/);

  const unsupported = await postLog(log.url, '<log/>', 'application/xml');
  assert.equal(unsupported.status, 415);
  assert.equal(unsupported.body.error.code, 'unsupported_media_type');
});

test('a body over LOG_BODY_LIMIT is a 413 and stores nothing; the next good body is fine', async () => {
  const line = (i: number) => JSON.stringify({ service: 'oversize', message: `line ${i} ${'x'.repeat(100)}` });
  const lines = Array.from({ length: 1000 }, (_, i) => line(i)); // ~130 KiB > 64 KiB
  for (const [body, type] of [
    [`[${lines.join(',')}]`, 'application/json'],
    [lines.join('\n'), 'application/x-ndjson'],
    [`[oversize] - ${'y'.repeat(100 * 1024)}`, 'text/plain'],
  ] as const) {
    const res = await postLog(log.url, body, type);
    assert.equal(res.status, 413, type);
    assert.equal(res.body.error.code, 'payload_too_large', type);
  }
  assert.deepEqual(await linesOf('oversize'), []);
  const ok = await postLog(log.url, `[${lines.slice(0, 10).join(',')}]`, 'application/json');
  assert.equal(ok.status, 202);
  assert.equal((await linesOf('oversize')).length, 10);
});

test('lines of any characters come back as sent, from the recent-lines index and from the files, each a line of its own', async () => {
  // ASCII lines between the others: the index finds each line by its bytes, which differ from its characters from the first é on.
  const messages = ['plain', 'é accent', 'emoji 😀 and 𝄞', 'plain again', '日本語のログ', 'a "quoted"\nsecond line\ttab \u0007 bell', 'last plain'];
  const res = await postLog(log.url, JSON.stringify(messages.map((message, i) => ({ service: 'unicode-lines', message, i, note: `ü${i}` }))), 'application/json');
  assert.equal(res.status, 202);
  const fromIndex = await linesOf('unicode-lines');
  assert.deepEqual(fromIndex.map((e) => [e.message, e.note]), messages.map((m, i) => [m, `ü${i}`]));
  const inFiles = storedLines(log.dataDir).filter((e) => e.service === 'unicode-lines');
  assert.deepEqual(inFiles.map((e) => e.message), messages);
  // A search by text reads the same lines.
  const found = await getJson(`${log.url}/logs?service=unicode-lines&q=${encodeURIComponent('日本語')}`);
  assert.deepEqual(found.body.entries.map((e: any) => e.message), ['日本語のログ']);
});

test('a retried batch (same x-log-batch-id) is stored once', async () => {
  const body = JSON.stringify([
    { service: 'retried', message: 'one' },
    { service: 'retried', message: 'two' },
  ]);
  const first = await postLog(log.url, body, 'application/json', { 'x-log-batch-id': 'client-a-17' });
  const again = await postLog(log.url, body, 'application/json', { 'x-log-batch-id': 'client-a-17' });
  assert.equal(first.status, 202);
  assert.equal(again.status, 202);
  assert.equal(again.body.accepted, 2);
  assert.equal(again.body.duplicate, true);
  assert.equal((await linesOf('retried')).length, 2);
  const bad = await postLog(log.url, body, 'application/json', { 'x-log-batch-id': 'no spaces allowed' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'invalid_batch_id');
  assert.equal((await linesOf('retried')).length, 2);
});

test('a retried batch is stored once across a crash of the log service (the batch journal)', async () => {
  const dataDir = tempDir('logs-journal-');
  const first = await startLogService({}, dataDir);
  const body = (tag: string) => JSON.stringify([
    { service: 'journaled', message: `${tag} one` },
    { service: 'journaled', message: `${tag} two` },
  ]);
  const stored = await postLog(first.url, body('a'), 'application/json', { 'x-log-batch-id': 'crash-a' });
  assert.equal(stored.status, 202);
  // The journal notes the batch once its lines are in the file; then the process dies without a goodbye.
  const journal = path.join(dataDir, 'batches.jsonl');
  await waitFor(() => fs.existsSync(journal) && fs.readFileSync(journal, 'utf8').includes('"crash-a"'), 'the batch in the journal');
  await first.stop('SIGKILL');

  const second = await startLogService({}, dataDir);
  try {
    const retried = await postLog(second.url, body('a'), 'application/json', { 'x-log-batch-id': 'crash-a' });
    assert.equal(retried.status, 202);
    assert.equal(retried.body.accepted, 2);
    assert.equal(retried.body.duplicate, true);
    const fresh = await postLog(second.url, body('b'), 'application/json', { 'x-log-batch-id': 'crash-b' });
    assert.equal(fresh.status, 202);
    assert.equal(fresh.body.duplicate, undefined);
    const lines = storedLines(dataDir).filter((e) => e.service === 'journaled');
    assert.deepEqual(lines.map((e) => e.message).sort(), ['a one', 'a two', 'b one', 'b two']);
  } finally {
    await second.stop();
  }
});

test('SIGTERM: every acknowledged line is on disk after exit', async () => {
  const own = await startLogService();
  const batch = (b: number) => Array.from({ length: 2000 }, (_, i) => JSON.stringify({ service: 'flush', message: `b${b} l${i}`, pad: 'p'.repeat(64) })).join('\n');
  const posts = Array.from({ length: 12 }, (_, b) => postLog(own.url, batch(b), 'application/x-ndjson').catch(() => ({ status: 0, body: {} })));
  await Promise.race(posts); // at least one answered: stop while others are still arriving
  const stopped = own.stop('SIGTERM');
  const answers = await Promise.all(posts);
  assert.equal(await stopped, 0, own.output());
  const acknowledged = answers.filter((a) => a.status === 202).reduce((sum, a) => sum + a.body.accepted, 0);
  assert.ok(acknowledged >= 2000, 'some lines were acknowledged');
  for (const a of answers) assert.ok([202, 503, 0].includes(a.status), `answered ${a.status}`);
  const lines = storedLines(own.dataDir).filter((e) => e.service === 'flush');
  assert.equal(lines.length, acknowledged, 'every acknowledged line, and no other, is in the files');
  assert.ok([...countBy(lines, (e) => e.message).values()].every((n) => n === 1), 'no line twice');
});

test('GET / is the log viewer', async () => {
  const res = await fetch(`${log.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  const html = await res.text();
  assert.match(html, /Switchboard logs/);
  assert.match(html, /logs\/stream/);
});

test('wrong methods and unknown paths answer in the JSON error shape', async () => {
  const get = await getJson(`${log.url}/log`);
  assert.equal(get.status, 405);
  assert.equal(get.body.error.code, 'method_not_allowed');
  const del = await getJson(`${log.url}/logs`, { method: 'DELETE' });
  assert.equal(del.status, 405);
  await waitFor(async () => (await getJson(`${log.url}/health`)).status === 200, 'health');
});
