/**
 * The two failures of the reference registry, as tests: it froze on one hanging peer, and it grew
 * to 464 MB on a 100 MiB registration. Here a peer whose heartbeat and patch endpoints accept
 * connections and never answer delays nobody else, and a 100 MiB registration is refused early
 * (declared or chunked) while the registry's RSS stays flat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getJson, startRegistry, startStub, waitFor } from './helpers.ts';
import { procStats } from '../bench/report.ts';
import { hangingRegistration, register, registryRound, startHangingPeer } from '../bench/fuzz/hangingPeer.ts';
import { rawExchange, requestHead, zeros, chunked } from '../bench/fuzz/raw.ts';

/** Generous on a loaded 2-core machine; a frozen registry takes the heartbeat and notify timeouts (seconds) per call. */
const BOUND_MS = 3000;
const MiB = 2 ** 20;

test('a peer that accepts and never answers (heartbeat and patches) delays no registration, listing or patch', async (t) => {
  const reg = await startRegistry({ HEARTBEAT_INTERVAL_MS: '300', HEARTBEAT_TIMEOUT_MS: '2000', NOTIFY_TIMEOUT_MS: '5000', NOTIFY_RETRIES: '3' });
  t.after(() => reg.stop());
  const peer = await startHangingPeer();
  t.after(() => peer.close());
  const watcher = await startStub();
  t.after(() => watcher.close());
  const provider = await startStub();
  t.after(() => provider.close());

  // The hanging peer subscribes to the provider, so every round sends it a patch that hangs.
  assert.equal((await register(reg.url, hangingRegistration(peer, 'hanging', ['provider']))).status, 200);
  assert.equal((await register(reg.url, watcher.registration('watcher', ['provider']))).status, 200);
  await waitFor(() => peer.connections >= 1, 'the registry to call the hanging peer');

  for (let i = 0; i < 8; i++) {
    const round = await registryRound(reg.url, watcher, provider, 'provider', BOUND_MS);
    t.diagnostic(`round ${i}: register ${round.registerMs.toFixed(0)} ms, patch ${round.patchMs.toFixed(0)} ms, list ${round.listMs.toFixed(0)} ms, deregister ${round.deregisterMs.toFixed(0)} ms`);
    assert.ok(round.ok, `round ${i}: ${round.problem ?? 'no patch reached the healthy watcher'}`);
    for (const [what, ms] of [['registration', round.registerMs], ['patch', round.patchMs], ['listing', round.listMs], ['deregistration', round.deregisterMs]] as const) {
      assert.ok(ms < BOUND_MS, `round ${i}: ${what} took ${ms.toFixed(0)} ms with a hanging peer`);
    }
  }
  assert.ok(peer.connections >= 2, `the hanging peer was called (${peer.connections} connections)`);
  const started = performance.now();
  assert.equal((await getJson(`${reg.url}/health`)).status, 200);
  assert.ok(performance.now() - started < BOUND_MS);
  // And the peer that never answers its heartbeat is found out (timeouts, then down).
  await waitFor(async () => (await getJson(`${reg.url}/services?name=hanging`)).body.instances[0]?.state === 'down', 'the hanging peer to be down', 30_000);
});

test('a 100 MiB registration is refused early (declared or chunked) and the registry memory stays flat', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const pid = reg.child.pid!;
  const host = new URL(reg.url).host;
  // Warm up: a few ordinary requests, so the baseline is not a cold process.
  for (let i = 0; i < 5; i++) await getJson(`${reg.url}/services`);
  const before = procStats(pid).rssMB;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, procStats(pid).rssMB)), 20);
  t.after(() => clearInterval(sampler));

  for (const framing of ['content-length', 'chunked'] as const) {
    for (let i = 0; i < 2; i++) {
      const answer = await rawExchange(reg.url, {
        head: requestHead('POST', '/services', host, ['Content-Type: application/json', framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${100 * MiB}`]),
        body: framing === 'chunked' ? chunked(100 * MiB) : zeros(100 * MiB),
        writeAfterAnswer: true,
        timeoutMs: 30_000,
      });
      t.diagnostic(`${framing}: ${answer.status} after ${answer.ms} ms; the registry let ${(answer.sent / MiB).toFixed(1)} MiB through`);
      assert.equal(answer.status, 413, `${framing}: ${answer.ending} ${answer.body}`);
      assert.equal(JSON.parse(answer.body).error.code, 'payload_too_large');
      assert.ok(answer.sent < 50 * MiB, `${framing}: the registry read ${(answer.sent / MiB).toFixed(1)} MiB of the body`);
    }
  }
  clearInterval(sampler);
  peak = Math.max(peak, procStats(pid).rssMB);
  t.diagnostic(`registry RSS ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB at most`);
  assert.ok(peak - before < 30, `RSS grew ${(peak - before).toFixed(0)} MB`);

  // Still serving: an ordinary registration and listing.
  const stub = await startStub();
  t.after(() => stub.close());
  assert.equal((await register(reg.url, stub.registration('after'))).status, 200);
  assert.equal((await getJson(`${reg.url}/services?name=after`)).body.instances.length, 1);
});
