/**
 * End to end: `npm start` on non-default ports in a temporary directory, images through the CLI,
 * a request traced through the log service by its id, and a Ctrl-C that leaves no process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PNG } from 'pngjs';
import { ROOT, getJson, tempDir, waitFor, freePort } from './helpers.ts';
import { runCli, STACK_LINE } from './cliRunner.ts';
import { alive, launch } from '../harness/processes.ts';
import { applyOp } from '../imageservice/ops.ts';

function testImage(width: number, height: number, seed: number): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = (i * 3 + seed) % 256;
    png.data[i * 4 + 1] = (i * 7 + seed * 5) % 256;
    png.data[i * 4 + 2] = (i * 11) % 256;
    png.data[i * 4 + 3] = 128 + (i % 128);
  }
  return PNG.sync.write(png);
}

test('npm start runs the platform; the CLI processes images; a request is traced; Ctrl-C stops everything', { timeout: 300_000 }, async (t) => {
  const dir = tempDir('platform-');
  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  // detached: its own process group, so a signal reaches it as Ctrl-C would.
  const launcher = launch('npm', ['start', '--', '--ephemeral', '--port', `registry=${registryPort}`, '--data-dir', path.join(dir, 'data')], {
    cwd: ROOT,
    env: { ...process.env, HEARTBEAT_INTERVAL_MS: '200', HEARTBEAT_TIMEOUT_MS: '500', LOG_BATCH_MS: '50' },
    detached: true,
  });
  t.after(() => launcher.kill());
  const pids = await launcher.waitUntilRunning();
  const output = launcher.output;
  for (const name of ['registry', 'logservice', 'grades', 'portal', 'storage', 'master', 'worker', 'frontend']) {
    assert.match(output(), new RegExp(`^${name}\\s+`, 'm'), `${name} is in the table`);
  }
  assert.match(output(), /^\[registry\s*\] .*registry listening on/m, 'console lines are prefixed with the service name');
  // Prefixed with the names they register as, so the name typed into the log viewer finds their lines.
  assert.match(output(), /^\[imagemaster\s*\] \S+ info \[imagemaster\] imagemaster listening on/m);
  assert.match(output(), /^\[platform\s*\] started imageworker \(pid \d+\)$/m, 'process ids are printed');
  // Started in order (the registry, then the log and events services, then the rest): a healthy start warns of nothing.
  const warnings = output().split('\n').filter((line) => /^\[[^\]]+\] \S+ (warn|error) /.test(line));
  assert.deepEqual(warnings, [], 'no WARN or ERROR line during a clean start');
  const ps = await runCli(['--json', 'platform', 'ps', '--data-dir', path.join(dir, 'data')]);
  assert.equal(ps.code, 0, ps.stderr);
  const processes = (JSON.parse(ps.stdout) as { processes: { name: string; pid: number; state: string }[] }).processes;
  assert.deepEqual(processes.map((p) => p.name), ['registry', 'log', 'events', 'grades', 'portal', 'imagestorage', 'imagemaster', 'imageworker', 'imagefrontend']);
  for (const p of processes) {
    assert.equal(p.state, 'up', p.name);
    assert.ok(pids.includes(p.pid), `${p.name}'s pid ${p.pid} is one of the launcher's processes`);
  }
  // The dashboard's processes view reads the same status through the registry.
  const viaRegistry = (await getJson(`${registryUrl}/platform`)).body as { processes: { name: string; pid: number; uptimeMs: number }[] };
  assert.deepEqual(viaRegistry.processes.map((p) => [p.name, p.pid]), processes.map((p) => [p.name, p.pid]));
  assert.ok(viaRegistry.processes.every((p) => p.uptimeMs >= 0));
  const listing = (await getJson(`${registryUrl}/services`)).body as { instances: { serviceName: string; serviceURL: string; state: string }[] };
  const urlOf = (name: string) => listing.instances.find((i) => i.serviceName === name && i.state === 'up')!.serviceURL;
  assert.notEqual(new URL(urlOf('imagefrontend')).port, '8080', 'non-default ports');

  // Every service serves Prometheus metrics: the process defaults plus its own figures.
  const ownMetric: Record<string, string> = {
    log: 'log_lines_accepted_total',
    grades: 'grades_requests_total',
    imagestorage: 'imagestorage_operations_total',
    imagemaster: 'imagemaster_tasks',
    imageworker: 'imageworker_transform_seconds',
    imagefrontend: 'imagefrontend_uploads_total',
    portal: 'service_resyncs_total',
  };
  for (const [url, metric] of [[registryUrl, 'registry_instances'], ...Object.entries(ownMetric).map(([name, m]) => [urlOf(name), m])]) {
    const res = await fetch(`${url}/metrics`);
    const text = await res.text();
    assert.equal(res.status, 200, url);
    assert.match(text, /process_cpu_user_seconds_total/, `${url} has the process metrics`);
    assert.match(text, new RegExp(`^# TYPE ${metric} `, 'm'), `${url} has ${metric}`);
  }

  // Images through the CLI: uploaded, processed by the worker, downloaded, pixel-exact.
  const inputs = [testImage(64, 48, 1), testImage(100, 30, 2)];
  const files = inputs.map((bytes, i) => {
    const file = path.join(dir, `in-${i}.png`);
    fs.writeFileSync(file, bytes);
    return file;
  });
  const outDir = path.join(dir, 'out');
  const submitted = await runCli(['images', 'submit', ...files, '--op', 'grayscale', '--out', outDir], { REGISTRY_URL: registryUrl });
  assert.equal(submitted.code, 0, submitted.stderr);
  assert.doesNotMatch(submitted.stderr, STACK_LINE);
  for (let i = 0; i < files.length; i++) {
    const got = PNG.sync.read(fs.readFileSync(path.join(outDir, `in-${i}.grayscale.png`)));
    const want = PNG.sync.read(inputs[i]);
    applyOp('grayscale', want.data, 255);
    assert.equal(got.width, want.width);
    assert.ok(Buffer.compare(got.data, want.data) === 0, `image ${i} is pixel-exact`);
  }
  const tasks = JSON.parse((await runCli(['--json', 'tasks', 'list'], { REGISTRY_URL: registryUrl })).stdout) as { counts: Record<string, number> };
  assert.equal(tasks.counts.done, 2);

  // One request, followed across services by its id.
  const requestId = `e2e-${Date.now()}`;
  const form = new FormData();
  form.append('uploadfile', new Blob([new Uint8Array(inputs[0])], { type: 'image/png' }), 'traced.png');
  const upload = await fetch(`${urlOf('imagefrontend')}/submitTask`, { method: 'POST', body: form, headers: { 'x-request-id': requestId } });
  assert.equal(upload.status, 200, await upload.clone().text());
  const traced = await waitFor(
    async () => {
      const result = await runCli(['--json', 'logs', 'query', '--request-id', requestId], { REGISTRY_URL: registryUrl });
      const entries = (JSON.parse(result.stdout) as { entries: { service: string; requestId: string }[] }).entries;
      const services = new Set(entries.map((e) => e.service));
      return services.has('imagefrontend') && services.has('imagemaster') ? entries : undefined;
    },
    'the traced request in the log service',
    60_000,
    250,
  );
  assert.ok(traced!.every((e) => e.requestId === requestId));
  // The traced image finished too, so the Ctrl-C below finds no worker holding a task (it would finish it first).
  await waitFor(
    async () => ((JSON.parse((await runCli(['--json', 'tasks', 'list'], { REGISTRY_URL: registryUrl })).stdout) as { counts: Record<string, number> }).counts.done === 3 ? true : undefined),
    'the traced task to be done',
    60_000,
    250,
  );

  // Ctrl-C with the log viewer's live tail open (a kept-alive connection, as a browser holds it): everything goes within 2 s.
  assert.ok(pids.length >= 9, `expected the launcher's processes, found ${pids.length}`);
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const tailEnded = new Promise<string>((resolve, reject) => {
    http
      .get(`${urlOf('log')}/logs/stream`, { agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
  await waitFor(async () => ((await getJson(`${urlOf('log')}/logs/stats`)).body.liveTails === 1 ? true : undefined), 'the tail to be open');
  const stopping = performance.now();
  process.kill(-launcher.child.pid!, 'SIGINT');
  await waitFor(() => pids.every((pid) => !alive(pid)), 'every process to exit within 2 s of Ctrl-C', 2000, 20).catch((err: Error) => {
    const command = (pid: number) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      } catch {
        return '(gone)';
      }
    };
    const left = pids.filter(alive).map((pid) => `${pid} ${command(pid)}`);
    throw new Error(`${err.message}; still running: ${left.join('; ')}`);
  });
  assert.ok(performance.now() - stopping <= 2000);
  assert.match(await tailEnded, /event: disconnect\ndata: .*"reason":"shutdown"/, 'the tail is told the service is stopping');
  const code = await Promise.race([launcher.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 60_000))]);
  // npm itself re-raises the Ctrl-C it received (exit by SIGINT); the launcher below it exits 0 after this line.
  assert.ok(code === 0 || launcher.child.signalCode === 'SIGINT', `npm ended with ${code}/${launcher.child.signalCode}:\n${output().slice(-3000)}`);
  assert.match(output(), /\[platform\s*\] everything has stopped/);
  assert.doesNotMatch(output(), /again: killing/, 'one Ctrl-C reaches the launcher once (a second would kill)');
  // Nor does a clean stop: each service deregisters before its port closes, so no check of it is refused.
  const stoppingLines = output().slice(output().indexOf('SIGINT: stopping')).split('\n');
  assert.deepEqual(stoppingLines.filter((line) => /^\[[^\]]+\] \S+ (warn|error) /.test(line)), [], 'no WARN or ERROR line during Ctrl-C');
});
