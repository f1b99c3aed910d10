import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { readEventStream, type ServerSentEvent } from './sse.ts';

test('a stream that stops being followed leaves no connection behind: the server closes at once', async () => {
  const connections: number[] = [];
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('id: 1\ndata: {"n":1}\n\n');
  });
  server.on('connection', () => connections.push(Date.now()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stream`;

  for (let round = 0; round < 2; round++) {
    const abort = new AbortController();
    const events: ServerSentEvent[] = [];
    const following = readEventStream(url, (event) => {
      events.push(event);
      abort.abort();
    }, abort.signal);
    await following;
    assert.deepEqual(events.map((e) => e.data), ['{"n":1}']);
  }
  // The server's close waits for every connection to end: one left open by the client (a pooled socket opened
  // again for the aborted request, nodejs/undici#5845) would hold it until the client went away.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const waited = await Promise.race([closed.then(() => 'closed'), sleep(10_000).then(() => 'still open')]);
  assert.equal(waited, 'closed', `connections made: ${connections.length}`);
  assert.equal(connections.length, 2, 'one connection per stream');
});
