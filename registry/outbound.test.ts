import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { MAX_CONNECTIONS_PER_ORIGIN, Outbound } from './outbound.ts';

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('an answer is its status; a refusal is a connection error; a peer that never answers is a timeout at the deadline', async (t) => {
  const outbound = new Outbound();
  t.after(() => outbound.destroy());
  const answering = http.createServer((req, res) => res.writeHead(req.url === '/bad' ? 503 : 200).end('{}'));
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => sockets.push(socket)); // accepts, reads, never answers
  t.after(() => {
    answering.close();
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const [up, quiet] = [await listen(answering), await listen(silent)];
  const gone = net.createServer();
  const closed = await listen(gone);
  await new Promise((resolve) => gone.close(resolve));

  assert.deepEqual({ ...(await outbound.request('GET', `${up}/ok`, 1000)), latencyMs: 0 }, { ok: true, status: 200, latencyMs: 0 });
  const bad = await outbound.request('POST', `${up}/bad`, 1000, '{}');
  assert.equal(bad.ok === false && bad.kind, 'status');
  assert.equal(bad.status, 503);

  const started = performance.now();
  const hung = await outbound.request('GET', `${quiet}/heartbeat`, 300);
  const took = performance.now() - started;
  assert.equal(hung.ok === false && hung.kind, 'timeout');
  assert.ok(took >= 290 && took < 2000, `the deadline holds: ${took} ms`);

  const refused = await outbound.request('GET', `${closed}/heartbeat`, 1000);
  assert.equal(refused.ok === false && refused.kind, 'connection', JSON.stringify(refused));
});

test('an endless answer body is not read to its end: the status comes back, well before the deadline', async (t) => {
  const outbound = new Outbound();
  t.after(() => outbound.destroy());
  const chunk = Buffer.alloc(16 * 1024, 'x');
  const endless = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const more = () => { while (res.write(chunk)); };
    res.on('drain', more);
    more();
  });
  t.after(() => endless.closeAllConnections());
  t.after(() => endless.close());
  const url = await listen(endless);
  const started = performance.now();
  const result = await outbound.request('GET', `${url}/heartbeat`, 5000);
  assert.equal(result.ok, true);
  assert.ok(performance.now() - started < 2000, 'not held until the deadline');
});

test('a burst to one origin opens at most MAX_CONNECTIONS_PER_ORIGIN connections, and every request is answered', async (t) => {
  const outbound = new Outbound();
  t.after(() => outbound.destroy());
  let open = 0;
  let peak = 0;
  const server = http.createServer((_req, res) => setTimeout(() => res.writeHead(200).end('{}'), 20));
  server.on('connection', (socket) => {
    peak = Math.max(peak, ++open);
    socket.on('close', () => open--);
  });
  t.after(() => server.close());
  const url = await listen(server);
  const burst = 2 * MAX_CONNECTIONS_PER_ORIGIN;
  const results = await Promise.all(Array.from({ length: burst }, (_, i) => outbound.request('GET', `${url}/i/${i}/heartbeat`, 10_000)));
  assert.equal(results.filter((r) => r.ok).length, burst, 'every request answered');
  assert.ok(peak <= MAX_CONNECTIONS_PER_ORIGIN, `${peak} connections at once`);
  assert.ok(peak > 1, 'the burst did go out in parallel');
});
