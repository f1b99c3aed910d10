/** GET /logs filters (index and files, across a restart) and the live tail. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, waitFor } from './helpers.ts';
import { postLog, startLogService } from './fixtures/logs.ts';

let log: Awaited<ReturnType<typeof startLogService>>;

before(async () => {
  log = await startLogService();
  const entries = [
    { service: 'q-grades', level: 'info', message: 'grade added for Ada', requestId: 'req-1', time: '2024-01-01T10:00:00Z' },
    { service: 'q-grades', level: 'error', message: 'database is locked', requestId: 'req-1', time: '2024-01-01T10:00:01Z' },
    { service: 'q-portal', level: 'info', message: 'GET /students', requestId: 'req-1', time: '2024-01-01T10:00:02Z' },
    { service: 'q-portal', level: 'warn', message: 'slow answer from grades', requestId: 'req-2', time: '2024-01-01T11:00:00Z', student: 'Grace' },
    { service: 'q-portal', level: 'debug', message: 'cache miss', time: '2024-01-02T09:00:00Z' },
  ];
  assert.equal((await postLog(log.url, JSON.stringify(entries), 'application/json')).status, 202);
});
after(async () => {
  await log?.stop();
});

async function query(params: string): Promise<string[]> {
  const res = await getJson(`${log.url}/logs?${params}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.entries.map((e: any) => e.message);
}

test('filters: service, level, requestId, text, since, until and limit, in time order (the newest last)', async () => {
  assert.deepEqual(await query('service=q-grades'), ['grade added for Ada', 'database is locked']);
  assert.deepEqual(await query('service=q-grades,q-portal&level=error,warn'), ['database is locked', 'slow answer from grades']);
  assert.deepEqual(await query('requestId=req-1'), ['grade added for Ada', 'database is locked', 'GET /students']);
  assert.deepEqual(await query('service=q-portal&q=GRACE'), ['slow answer from grades'], 'text matches metadata, ignoring case');
  assert.deepEqual(await query('service=q-grades&q=locked'), ['database is locked']);
  assert.deepEqual(await query('service=q-portal&since=2024-01-01T10:30:00Z'), ['slow answer from grades', 'cache miss']);
  assert.deepEqual(await query('service=q-portal&until=2024-01-01T12:00:00Z'), ['GET /students', 'slow answer from grades']);
  assert.deepEqual(await query(`service=q-portal&since=${Date.parse('2024-01-02T00:00:00Z')}`), ['cache miss'], 'epoch ms');
  assert.deepEqual(await query('requestId=req-1&limit=1'), ['GET /students']);
  assert.deepEqual(await query('service=q-portal&since=1h'), [], 'relative: nothing in the last hour has a 2024 time');
});

test('bad query parameters are 400s that name the parameter', async () => {
  for (const [params, field] of [
    ['since=last-tuesday', 'since'],
    ['until=soon', 'until'],
    ['limit=0', 'limit'],
    ['limit=100000', 'limit'],
    ['limit=ten', 'limit'],
  ]) {
    const res = await getJson(`${log.url}/logs?${params}`);
    assert.equal(res.status, 400, params);
    assert.equal(res.body.error.code, 'invalid_query');
    assert.match(res.body.error.message, new RegExp(`^${field}:`), params);
  }
});

test('older lines come from the files, beyond the index, and survive a restart', async () => {
  const small = await startLogService({ LOG_INDEX_ENTRIES: '5' });
  try {
    for (let b = 0; b < 3; b++) {
      const batch = Array.from({ length: 10 }, (_, i) => ({ service: 'old', message: `m${b * 10 + i}`, requestId: i === 3 ? 'needle' : undefined }));
      assert.equal((await postLog(small.url, JSON.stringify(batch), 'application/json')).status, 202);
    }
    const expected = Array.from({ length: 30 }, (_, i) => `m${i}`);
    const all = await getJson(`${small.url}/logs?service=old&limit=100`);
    assert.deepEqual(all.body.entries.map((e: any) => e.message), expected);
    assert.deepEqual(all.body.entries.map((e: any) => e.seq), Array.from({ length: 30 }, (_, i) => i));
    assert.deepEqual((await getJson(`${small.url}/logs?requestId=needle`)).body.entries.map((e: any) => e.message), ['m3', 'm13', 'm23']);

    // A restart on the same files: the old lines are found, and numbering continues.
    assert.equal(await small.stop(), 0);
    const again = await startLogService({ LOG_INDEX_ENTRIES: '5' }, small.dataDir);
    try {
      assert.equal((await postLog(again.url, JSON.stringify({ service: 'old', message: 'after restart' }), 'application/json')).status, 202);
      const after = await getJson(`${again.url}/logs?service=old&limit=100`);
      assert.deepEqual(after.body.entries.map((e: any) => e.message), [...expected, 'after restart']);
      assert.equal(after.body.entries.at(-1).seq, 30);
      assert.deepEqual((await getJson(`${again.url}/logs?service=old&q=m1&limit=3`)).body.entries.map((e: any) => e.message), ['m17', 'm18', 'm19'], 'the newest three, in time order');
    } finally {
      await again.stop();
    }
  } finally {
    await small.stop();
  }
});

/** Reads server-sent events from a stream until `done` says enough. */
async function readEvents(url: string, done: (events: any[]) => boolean, onOpen: () => Promise<void>): Promise<any[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  const res = await fetch(url, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const events: any[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  let opened = false;
  try {
    for await (const chunk of res.body!) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (data) events.push(JSON.parse(data));
      }
      if (!opened) {
        opened = true;
        await onOpen();
      }
      if (done(events)) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

test('the live tail sends new matching lines only', async () => {
  const events = await readEvents(
    `${log.url}/logs/stream?service=tail-a&level=warn,error`,
    (got) => got.some((e) => e.message === 'last'),
    async () => {
      const lines = [
        { service: 'tail-a', level: 'info', message: 'not this level' },
        { service: 'tail-b', level: 'error', message: 'not this service' },
        { service: 'tail-a', level: 'warn', message: 'first' },
        { service: 'tail-a', level: 'error', message: 'last' },
      ];
      // Sent twice apart so both a batch and a later post reach the reader.
      assert.equal((await postLog(log.url, JSON.stringify(lines.slice(0, 3)), 'application/json')).status, 202);
      assert.equal((await postLog(log.url, lines.slice(3).map((l) => JSON.stringify(l)).join('\n'), 'application/x-ndjson')).status, 202);
    },
  );
  assert.deepEqual(events.map((e) => e.message), ['first', 'last']);
  assert.ok(events.every((e) => typeof e.seq === 'number' && e.receivedAt));
  const streams = await waitFor(async () => {
    const text = await (await fetch(`${log.url}/metrics`)).text();
    return /log_tail_streams\{[^}]*\} 0/.test(text) ? text : undefined;
  }, 'the closed tail to be forgotten');
  assert.ok(streams);
});

test('the live tail refuses bad filters like GET /logs', async () => {
  const res = await getJson(`${log.url}/logs/stream?since=never`);
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, 'invalid_query');
});
