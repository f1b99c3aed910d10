import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sendJsonList } from './jsonList.ts';

async function fetchFrom(items: unknown[]): Promise<{ type: string | null; text: string }> {
  const server = http.createServer((_req, res) => sendJsonList(res, 'instances', items, (item) => ({ item })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { type: res.headers.get('content-type'), text: await res.text() };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

test('a listing written in pieces is byte for byte what JSON.stringify makes of it', async () => {
  // Empty, one piece, and many pieces (about 1.4 MB: a piece ends every 64 KiB).
  for (const count of [0, 1, 20_000]) {
    const items = Array.from({ length: count }, (_, i) => ({ i, note: `"quoted" é ${'x'.repeat(i % 50)}` }));
    const { type, text } = await fetchFrom(items);
    assert.equal(type, 'application/json; charset=utf-8');
    assert.equal(text, JSON.stringify({ instances: items.map((item) => ({ item })) }), `${count} items`);
  }
});
