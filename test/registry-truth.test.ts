/**
 * What the registry says must be true (#18): a killed worker is down within a second, a restarted
 * process takes its predecessor's place (no ghost, also across a restart of everything on the same
 * data), why an instance is down is data, its history lists its transitions, and Prometheus finds
 * every up instance through GET /services/prometheus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, getJson, startFixture, startProcess, startRegistry, startStub, tempDir, waitFor } from './helpers.ts';
import { Registry } from '../registry/registry.ts';
import { registrationSchema } from '../registry/protocol.ts';
import { Timeline } from '../registry/timeline.ts';
import { LOG_SERVICE } from '../logservice/config.ts';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function instancesOf(registryUrl: string, name: string): Promise<any[]> {
  return (await getJson(`${registryUrl}/services?name=${name}`)).body.instances;
}

/**
 * The reason a SIGKILLed process is down for: refused, or reset when the check that found it connected while
 * the dying process still held its listening socket (seen under load).
 */
const KILLED = /^connection_(refused|reset)$/;

const post = (url: string, body: unknown) =>
  getJson(`${url}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('kill -9 of an image worker: down on GET /services within 1 s, with the reason as data', async (t) => {
  // The registry's defaults (a check a second), not the tests' fast ones: the worker must be found by its closed connection.
  const reg = await startRegistry({ HEARTBEAT_INTERVAL_MS: '1000', HEARTBEAT_TIMEOUT_MS: '1000' });
  t.after(() => reg.stop());
  const worker = await startProcess('cmd/worker.ts', { env: { REGISTRY_URL: reg.url, CONCURRENCY: '1' } });
  t.after(() => worker.stop('SIGKILL'));
  const [registered] = (await waitFor(async () => {
    const list = await instancesOf(reg.url, 'imageworker');
    return list.length === 1 && list[0].lastCheckAt ? list : undefined;
  }, 'the worker to be registered and checked'))!;
  assert.equal(registered.ttlSeconds, undefined, 'no lease: it serves HTTP, so it is checked by heartbeat');
  assert.match(registered.heartbeatURL, /\/heartbeat$/);

  const killedAt = Date.now();
  worker.child.kill('SIGKILL');
  const down = (await waitFor(async () => (await instancesOf(reg.url, 'imageworker')).find((i) => i.state === 'down'), 'the worker to be down', 15_000, 10))!;
  const elapsed = Date.now() - killedAt;
  t.diagnostic(`kill -9 of the worker → down on GET /services in ${elapsed} ms`);
  assert.ok(elapsed <= 1000, `down after ${elapsed} ms (bound 1000)`);
  assert.match(down.downReason.code, KILLED);
  assert.equal(typeof down.downReason.message, 'string');
  assert.match(down.downSince, ISO_UTC);
});

test('a crashed service started again (a new process at a new port) leaves exactly one instance, with its history and one restart', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const first = await startFixture('rebooted', reg.url);
  t.after(() => first.stop('SIGKILL'));
  const [old] = (await waitFor(async () => {
    const list = await instancesOf(reg.url, 'rebooted');
    return list.length === 1 ? list : undefined;
  }, 'the first process to register'))!;
  first.child.kill('SIGKILL');
  await waitFor(async () => (await instancesOf(reg.url, 'rebooted'))[0]?.state === 'down', 'the first process to be down');

  const second = await startFixture('rebooted', reg.url);
  t.after(() => second.stop());
  assert.notEqual(second.url, first.url);
  await waitFor(async () => (await instancesOf(reg.url, 'rebooted')).some((i) => i.serviceURL === second.url), 'the new process to register');
  const list = await instancesOf(reg.url, 'rebooted');
  assert.deepEqual(list.map((i) => [i.serviceURL, i.state]), [[second.url, 'up']], 'one instance, the new one: no ghost of the old');
  assert.equal(list[0].restarts, 1);
  assert.equal(list[0].predecessorId, old.instanceId);
  assert.notEqual(list[0].instanceId, old.instanceId);

  // Its history: registered, down (why), restarted (from what).
  const history = await getJson(`${reg.url}/services/${list[0].instanceId}/history`);
  assert.equal(history.status, 200);
  const transitions = history.body.transitions as any[];
  assert.deepEqual(transitions.map((h) => h.event), ['registered', 'down', 'restarted']);
  assert.match(transitions[1].reason.code, KILLED);
  assert.deepEqual(transitions[2].previous, { instanceId: old.instanceId, serviceURL: first.url });
  for (const h of transitions) assert.match(h.at, ISO_UTC);
  assert.equal((await getJson(`${reg.url}/services/${list[0].instanceId}`)).body.serviceURL, second.url);
  const unknown = await getJson(`${reg.url}/services/nobody/history`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'unknown_instance');
});

test('the same instanceId coming back at a new URL takes its old place once that is down; while it is up, 409', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const before = await startStub();
  const registered = await post(reg.url, { ...before.registration('comeback'), instanceId: 'comeback-1' });
  assert.equal(registered.status, 200);
  const after = await startStub();
  t.after(() => after.close());
  const early = await post(reg.url, { ...after.registration('comeback'), instanceId: 'comeback-1' });
  assert.equal(early.status, 409, 'its holder is up: the id still belongs to its URL');
  assert.equal(early.body.error.code, 'instance_id_in_use');

  await before.close();
  await waitFor(async () => (await instancesOf(reg.url, 'comeback'))[0]?.state === 'down', 'the old process to be down');
  const back = await post(reg.url, { ...after.registration('comeback'), instanceId: 'comeback-1' });
  assert.equal(back.status, 200);
  assert.equal(back.body.instanceId, 'comeback-1');
  const list = await instancesOf(reg.url, 'comeback');
  assert.deepEqual(list.map((i) => [i.instanceId, i.serviceURL, i.state]), [['comeback-1', after.url, 'up']]);
  assert.equal(list[0].restarts, 1);
});

test('the registry and its services killed and started again on the same data: no ghost of the old processes', async (t) => {
  const port = String(await freePort());
  const dataDir = tempDir('registry-ghost-');
  let reg = await startRegistry({ PORT: port }, dataDir);
  t.after(() => reg.stop());
  const oldProcs = [await startFixture('steady', reg.url), await startFixture('steady', reg.url), await startFixture('alone', reg.url)];
  t.after(() => Promise.all(oldProcs.map((p) => p.stop('SIGKILL'))));
  await waitFor(async () => (await getJson(`${reg.url}/services`)).body.instances.length === 3, 'three instances');
  // As when the machine (or the launcher with everything under it) is killed: nobody deregisters.
  reg.child.kill('SIGKILL');
  for (const proc of oldProcs) proc.child.kill('SIGKILL');
  await Promise.all([reg.exited, ...oldProcs.map((p) => p.exited)]);

  reg = await startRegistry({ PORT: port }, dataDir);
  assert.match(reg.output(), /restored 3 registration\(s\)/);
  const newProcs = [await startFixture('steady', reg.url), await startFixture('steady', reg.url), await startFixture('alone', reg.url)];
  t.after(() => Promise.all(newProcs.map((p) => p.stop())));
  const urls = newProcs.map((p) => p.url).sort();
  const list = (await waitFor(async () => {
    const now = (await getJson(`${reg.url}/services`)).body.instances as any[];
    return now.length === 3 && now.every((i) => i.state === 'up') ? now : undefined;
  }, 'exactly the three new processes, all up', 15_000))!;
  assert.deepEqual(list.map((i) => i.serviceURL).sort(), urls);
  assert.deepEqual(list.map((i) => i.restarts), [1, 1, 1]);
});

test('GET /services/prometheus lists every up instance in Prometheus HTTP service discovery format, and the targets scrape', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const procs = [await startFixture('alpha', reg.url), await startFixture('alpha', reg.url), await startFixture('beta', reg.url, [], { LEASE_TTL_SECONDS: '30' })];
  t.after(() => Promise.all(procs.map((p) => p.stop())));
  const gone = await startFixture('gamma', reg.url);
  await waitFor(async () => (await instancesOf(reg.url, 'gamma')).length === 1, 'gamma to register');
  gone.child.kill('SIGKILL');
  await waitFor(async () => (await instancesOf(reg.url, 'gamma'))[0]?.state === 'down', 'gamma to be down');

  const instances = (await waitFor(async () => {
    const now = (await getJson(`${reg.url}/services`)).body.instances as any[];
    return now.filter((i) => i.state === 'up').length === 3 ? now : undefined;
  }, 'alpha twice and beta up'))!;
  const answer = await getJson(`${reg.url}/services/prometheus`);
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get('content-type') ?? '', /application\/json/);
  const groups = answer.body as { targets: string[]; labels: Record<string, string> }[];
  assert.ok(Array.isArray(groups));
  for (const group of groups) {
    assert.equal(group.targets.length, 1);
    assert.match(group.targets[0], /^127\.0\.0\.1:\d+$/);
    assert.equal(group.labels.__metrics_path__, '/metrics');
    assert.equal(typeof group.labels.service, 'string');
    assert.equal(typeof group.labels.instance_id, 'string');
    for (const name of Object.keys(group.labels)) assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_]*$/, 'a valid Prometheus label name');
  }
  const listed = groups.filter((g) => g.labels.service !== 'registry').map((g) => `${g.labels.service} ${g.labels.instance_id} http://${g.targets[0]}`).sort();
  const expected = instances.filter((i) => i.state === 'up').map((i) => `${i.serviceName} ${i.instanceId} ${i.serviceURL}`).sort();
  assert.equal(expected.length, 3);
  assert.deepEqual(listed, expected, 'every up instance, and no down one');
  assert.deepEqual(groups.filter((g) => g.labels.service === 'registry').map((g) => `http://${g.targets[0]}`), [reg.url], 'and the registry itself');
  for (const instance of instances.filter((i) => i.state === 'up')) {
    const group = groups.find((g) => g.labels.instance_id === instance.instanceId)!;
    assert.equal(group.labels.__meta_switchboard_metadata_pid, instance.metadata.pid, 'metadata as __meta_ labels, for relabelling');
  }
  // What Prometheus would scrape answers with metrics.
  for (const group of groups) {
    const res = await fetch(`http://${group.targets[0]}${group.labels.__metrics_path__}`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /process_resident_memory_bytes/);
  }
});

test("the timeline counts instances up and the log service's lines per minute, read from the real log service", async (t) => {
  const logs = await startProcess('cmd/logservice.ts', { env: { REGISTRY_URL: 'http://127.0.0.1:9', DATA_DIR: tempDir('timeline-logs-') } });
  t.after(() => logs.stop());
  const registry = new Registry();
  registry.register(registrationSchema.parse({ serviceName: LOG_SERVICE, serviceURL: logs.url, heartbeatURL: `${logs.url}/heartbeat` }));
  const timeline = new Timeline(registry, { sampleMs: 200, keep: 50, timeoutMs: 2000 });
  t.after(() => timeline.stop());
  timeline.start();
  const ship = async () => {
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ service: 'timeline-test', level: 'info', message: `line ${i}` })).join('\n');
    await fetch(`${logs.url}/log`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines });
  };
  const rated = await waitFor(async () => {
    await ship();
    return timeline.view().samples.find((s) => (s.logLinesPerMinute ?? 0) > 0);
  }, 'a sample with log lines per minute', 15_000, 100);
  assert.equal(rated!.up, 1);
  assert.equal(rated!.down, 0);
  const { samples, sampleMs } = timeline.view();
  assert.equal(sampleMs, 200);
  for (const sample of samples) assert.match(sample.at, ISO_UTC);
});
