/**
 * A service stopped while its registration is still unanswered (the registry answers once the change is on
 * disk and the first patch is through): once the answer comes, it deregisters what was registered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFixture, waitFor } from './helpers.ts';

test('SIGTERM while the registration is unanswered: the answered registration is taken back', async (t) => {
  // A registry stand-in that holds the answer to the registration until told to send it.
  const seen: string[] = [];
  let answer: (() => void) | undefined;
  const registry = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'POST' && req.url === '/services') {
        answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ instanceId: 'held-1', providers: {}, seq: 0, heartbeatIntervalMs: 1000 }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    registry.closeAllConnections();
    registry.close();
  });
  const registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
  const service = await startFixture('echo', registryUrl);
  t.after(() => service.stop('SIGKILL'));
  await waitFor(() => answer, 'the registration to arrive');
  service.child.kill('SIGTERM');
  await waitFor(() => service.output().includes('shutting down'), 'the service to begin its shutdown');
  answer!();
  assert.equal(await service.exited, 0);
  assert.ok(seen.includes('DELETE /services/held-1'), `the registration answered during shutdown was deregistered (saw ${seen.join(', ')})`);
});
