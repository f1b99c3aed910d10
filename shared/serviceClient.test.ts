/**
 * The keep-alive race: an instance closes a pooled connection (its idle timeout) just as a request goes out on it.
 * The request never reached the instance, so an idempotent one is sent to it once more, even when it is the only one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProviderTable } from './providers.ts';
import { createServiceClient } from './serviceClient.ts';

/** A server that answers every request, except that the second request on any connection finds it closed unanswered. */
async function racingServer(t: { after(fn: () => unknown): void }) {
  const seen = { requests: 0, dropped: 0 };
  const server = http.createServer((req, res) => {
    seen.requests++;
    const socket = req.socket as typeof req.socket & { served?: number };
    socket.served = (socket.served ?? 0) + 1;
    if (socket.served === 2) {
      seen.dropped++;
      socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ ok: true })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  t.after(() => server.closeAllConnections());
  const providers = new ProviderTable();
  providers.replace('only', [`http://127.0.0.1:${(server.address() as AddressInfo).port}`]);
  return { seen, client: createServiceClient('only', providers, { timeoutMs: 5000 }) };
}

test('an idempotent request on a pooled connection the only instance closed is sent once more, and succeeds', async (t) => {
  const { seen, client } = await racingServer(t);
  assert.equal((await client.put('/a', 'x')).status, 200);
  // The second request reuses the kept-alive connection, which the server drops unanswered.
  const res = await client.put('/b', 'y');
  assert.equal(res.status, 200);
  assert.equal(seen.dropped, 1, 'the race happened');
  assert.equal(seen.requests, 3, 'sent once more, no more');
});

test('a POST in the same race is not sent again: it may have been handled', async (t) => {
  const { seen, client } = await racingServer(t);
  assert.equal((await client.post('/a', 'x')).status, 200);
  await assert.rejects(client.post('/b', 'y'), (err: { code?: string }) => err.code === 'ECONNRESET');
  assert.equal(seen.requests, 2);
});
