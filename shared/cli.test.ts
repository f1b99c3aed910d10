import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { CliError, describeError, jsonText, printable, table } from './cli.ts';
import { NoProviderError } from './serviceClient.ts';
import { RegistryError } from '../registry/client.ts';
import { ApiError } from './apiError.ts';

test('printable escapes C0, DEL and C1, and leaves other text (backslashes, accents, emoji) alone', () => {
  assert.equal(printable('a\r\nb\tc'), 'a\\r\\nb\\tc');
  assert.equal(printable('\x1b]0;title\x07\x1b[31mred\x00'), '\\x1b]0;title\\x07\\x1b[31mred\\x00');
  assert.equal(printable('\x7f\u0080\u009b\u009f'), '\\x7f\\u0080\\u009b\\u009f');
  assert.equal(printable('C:\\path é ✓ 😀 \u00a0'), 'C:\\path é ✓ 😀 \u00a0');
});

test('jsonText is the same JSON value with DEL and C1 escaped; table cells are escaped before they are aligned', () => {
  const value = { message: 'x\x1b[2J\u009b\x7f\n' };
  const text = jsonText(value, 2);
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  assert.deepEqual(JSON.parse(text), value);
  assert.equal(table(['a', 'b'], [['x\ny', 'z']]), 'a     b\n----  -\nx\\ny  z');
});

test('describeError says in one line what each failure came to', async () => {
  const registryUrl = 'http://127.0.0.1:1';
  assert.equal(describeError(new CliError('--limit must be a whole number'), registryUrl), '--limit must be a whole number');
  assert.equal(describeError(new NoProviderError('log'), registryUrl), `${new NoProviderError('log').message}. Is it running? (npm start runs everything)`);
  assert.match(describeError(new RegistryError(0, 'ECONNREFUSED', 'x'), registryUrl), /^cannot reach the registry at http:\/\/127\.0\.0\.1:1: is it running\?/);
  assert.equal(describeError(new RegistryError(409, 'instance_id_in_use', 'taken'), registryUrl), 'the registry refused: taken');
  assert.equal(describeError(new ApiError(404, 'not_found', 'no task 7'), registryUrl), 'no task 7');
  const server = http.createServer((_req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'bad_request', message: 'no \x1b[31mred' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const failed = (request: Promise<unknown>) => request.then(() => assert.fail('should fail'), (err: unknown) => describeError(err, registryUrl));
  assert.equal(await failed(axios.get('/x', { baseURL: url })), `${url} answered 400: no \\x1b[31mred`);
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const fresh = new http.Agent({ keepAlive: false });
  assert.equal(await failed(axios.get('/x', { baseURL: url, httpAgent: fresh })), `${url} is unreachable (ECONNREFUSED)`);
});
