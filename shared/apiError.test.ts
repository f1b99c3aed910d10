import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { ApiError, classifyUpstream, type UpstreamFailure } from './apiError.ts';
import { ProviderTable } from './providers.ts';
import { createServiceClient, NoProviderError } from './serviceClient.ts';

/** A server on an ephemeral port that treats each request as `handle` says. */
async function serve(handle: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function failureOf(request: Promise<unknown>): Promise<UpstreamFailure | undefined> {
  try {
    await request;
  } catch (err) {
    return classifyUpstream(err);
  }
  assert.fail('the request should have failed');
}

test('a closed port is refused: the request reached no server', async () => {
  const gone = await serve(() => {});
  await gone.close();
  const failure = await failureOf(axios.get(`${gone.url}/x`, { baseURL: gone.url, timeout: 2000 }));
  assert.deepEqual(failure, { kind: 'refused', target: gone.url, code: 'ECONNREFUSED', reason: 'ECONNREFUSED' });
});

test('no answer in time is a timeout; a connection cut before the answer is lost', async () => {
  const silent = await serve(() => {});
  const cutter = await serve((req) => req.socket.destroy());
  try {
    const slow = await failureOf(axios.get('/x', { baseURL: silent.url, timeout: 100 }));
    assert.equal(slow?.kind, 'timeout');
    const cut = await failureOf(axios.post('/x', { a: 1 }, { baseURL: cutter.url, timeout: 2000 }));
    assert.equal(cut?.kind, 'lost');
    assert.equal(cut?.kind === 'lost' && cut.code, 'ECONNRESET');
  } finally {
    await Promise.all([silent.close(), cutter.close()]);
  }
});

test('an error answer is answered, with the JSON error read from a JSON or a byte body', async () => {
  const service = await serve((_req, res) => {
    res.writeHead(409, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'lease_lost', message: 'the lease has lapsed' } }));
  });
  const bare = await serve((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/html' });
    res.end('<h1>busy</h1>');
  });
  try {
    const expected = { kind: 'answered', target: service.url, status: 409, code: 'lease_lost', message: 'the lease has lapsed' };
    assert.deepEqual(await failureOf(axios.get('/x', { baseURL: service.url })), expected);
    assert.deepEqual(await failureOf(axios.get('/x', { baseURL: service.url, responseType: 'arraybuffer' })), expected);
    assert.deepEqual(await failureOf(axios.get('/x', { baseURL: bare.url })), { kind: 'answered', target: bare.url, status: 503, code: undefined, message: undefined });
  } finally {
    await Promise.all([service.close(), bare.close()]);
  }
});

test('no provider listed is no_provider, thrown or wrapped by axios', async () => {
  const client = createServiceClient('grades', new ProviderTable());
  const failure = await failureOf(client.get('/students'));
  assert.deepEqual(failure, { kind: 'no_provider', message: new NoProviderError('grades').message });
  assert.equal(classifyUpstream(new NoProviderError('log'))?.kind, 'no_provider');
});

test("an ApiError reads back as what it was made from; what isn't a call's failure is undefined", () => {
  class ShopError extends ApiError {
    override readonly name = 'ShopError';
  }
  const answered = ShopError.answered({ kind: 'answered', status: 404 }, 'the shop');
  assert.ok(answered instanceof ShopError && answered instanceof ApiError);
  assert.deepEqual([answered.status, answered.code, answered.message, answered.unreachable], [404, 'http_error', 'the shop answered 404', false]);
  assert.deepEqual(classifyUpstream(answered), { kind: 'answered', status: 404, code: 'http_error', message: 'the shop answered 404' });
  const unreachable = ShopError.unreachable({ kind: 'refused', code: 'ECONNREFUSED', reason: 'ECONNREFUSED' }, 'the shop at http://x');
  assert.deepEqual([unreachable.status, unreachable.code, unreachable.message], [0, 'ECONNREFUSED', 'the shop at http://x is unreachable (ECONNREFUSED)']);
  assert.equal(classifyUpstream(unreachable)?.kind, 'refused');
  assert.equal(classifyUpstream(new ShopError(0, 'ECONNABORTED', 'slow'))?.kind, 'timeout');
  assert.equal(classifyUpstream(new TypeError('x is not a function')), undefined);
  assert.equal(classifyUpstream(undefined), undefined);
});
