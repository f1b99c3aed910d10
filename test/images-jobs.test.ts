/**
 * Bulk jobs (#17) through the real CLI and the real pipeline: folders and zip archives as one job, a Ctrl-C and a
 * resume that sends nothing twice, pause and resume at the master, a master restart in the middle, and bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startRegistry, startStorageProc, startMasterProc, startWorkerProc, stopAll, waitFor, getJson, tempDir, submit, waitForTask } from './fixtures/pipeline.ts';
import { rgbaImage, firstMismatch, type PngKind } from './fixtures/pngs.ts';
import { zipOf } from './fixtures/zip.ts';
import { runCli, STACK_LINE } from './cliRunner.ts';
import { ROOT } from './helpers.ts';
import { startEventsService } from './events-helpers.ts';

interface Event {
  event: string;
  [key: string]: any;
}

const events = (stdout: string): Event[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

/** A folder of 30 PNGs in sub-folders, a zip of 10 (and a non-PNG in each): the kinds by output path. */
function photos(dir: string): { root: string; zip: string; kinds: Map<string, PngKind> } {
  const root = path.join(dir, 'photos');
  const kinds = new Map<string, PngKind>();
  for (let i = 0; i < 30; i++) {
    const sub = path.join(root, `set${i % 3}`, i % 2 ? 'odd' : 'even');
    fs.mkdirSync(sub, { recursive: true });
    const { png, kind } = rgbaImage(16 + i, 8, i + 1);
    fs.writeFileSync(path.join(sub, `p${i}.png`), png);
    kinds.set(path.join('photos', path.relative(root, sub), `p${i}.invert.png`), kind);
  }
  fs.writeFileSync(path.join(root, 'notes.txt'), 'not an image');
  const entries = [];
  for (let i = 0; i < 10; i++) {
    const { png, kind } = rgbaImage(12, 10 + i, 50 + i);
    entries.push({ name: `inner/z${i}.png`, data: png, deflate: i % 2 === 0 });
    kinds.set(path.join('pack', 'inner', `z${i}.invert.png`), kind);
  }
  entries.push({ name: 'readme.md', data: Buffer.from('# not an image'), deflate: true });
  const zip = path.join(dir, 'pack.zip');
  fs.writeFileSync(zip, zipOf(entries));
  return { root, zip, kinds };
}

/** Runs the CLI with --json, calling `onEvent` for each line as it comes; resolves with the exit code and all events. */
function runStreaming(args: string[], env: Record<string, string>, onEvent: (e: Event, child: ReturnType<typeof spawn>) => void = () => {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), '--json', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen: Event[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (!line.startsWith('{')) continue;
      const event = JSON.parse(line) as Event;
      seen.push(event);
      onEvent(event, child);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{ code: number | string; events: Event[]; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code: code ?? signal ?? -1, events: seen, stderr })));
}

function assertResults(out: string, kinds: Map<string, PngKind>): void {
  for (const [rel, kind] of kinds) {
    const file = path.join(out, rel);
    assert.ok(fs.existsSync(file), `${rel} was downloaded`);
    assert.equal(firstMismatch(kind, 'invert', fs.readFileSync(file)), undefined, rel);
  }
  const all = fs.readdirSync(out, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  assert.equal(all.length, kinds.size, 'nothing else (no partial files) under --out');
}

test('a folder and a zip as one job: 40 tasks, 2 skipped with reasons; Ctrl-C after 15 uploads and a resume send nothing twice', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  let worker: Awaited<ReturnType<typeof startWorkerProc>> | undefined;
  t.after(() => stopAll(worker, master, storage, registry));
  const dir = tempDir('jobs-resume-');
  const { root, zip, kinds } = photos(dir);
  const out = path.join(dir, 'out');
  const env = { REGISTRY_URL: registry.url };
  const args = ['images', 'submit', root, zip, '--op', 'invert', '--out', out, '--state', path.join(dir, 'state'), '--concurrency', '1'];

  // No worker yet: the first run uploads and waits; it is interrupted after its 15th upload.
  let uploads = 0;
  const first = await runStreaming(args, env, (e, child) => {
    if (e.event === 'uploaded' && ++uploads === 15) child.kill('SIGINT');
  });
  assert.equal(first.code, 130, first.stderr);
  assert.match(first.stderr, /interrupted: \d+ uploaded, 0 results downloaded; run the same command again to resume job "photos-invert-[0-9a-f]{8}"/);
  const skipped = first.events.filter((e) => e.event === 'skipped');
  assert.deepEqual(skipped.map((e) => [path.relative(dir, e.file), e.reason]), [
    ['photos/notes.txt', 'not a PNG (its first bytes are not the PNG signature)'],
    ['pack.zip!/readme.md', 'not a PNG (its first bytes are not the PNG signature)'],
  ]);
  const createdFirst = first.events.filter((e) => e.event === 'uploaded' && e.created).length;
  assert.ok(createdFirst >= 15 && createdFirst < 40, `${createdFirst} uploaded before the interrupt`);
  const jobId = first.events.find((e) => e.event === 'job')!.id;

  worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  // The master may hold one more than the CLI printed: the upload in flight (one at a time) when it was
  // interrupted, if its body had arrived whole. Read once the worker is up, long after that upload has ended.
  const atMaster = (await getJson(`${master.url}/jobs/${jobId}`)).body.total as number;
  assert.ok(atMaster === createdFirst || atMaster === createdFirst + 1, `${atMaster} tasks at the master after ${createdFirst} printed uploads`);
  const second = await runStreaming(args, env);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, STACK_LINE);
  assert.equal(second.events.find((e) => e.event === 'job')!.id, jobId, 'the same job');
  assert.equal(second.events.some((e) => e.event === 'news'), false, 'no events service: polling alone');
  const sentAgain = second.events.filter((e) => e.event === 'uploaded');
  assert.equal(sentAgain.filter((e) => !e.created).length, 0, 'no upload answered with an existing task: what the master had was known from the job, not re-sent');
  assert.equal(atMaster + sentAgain.length, 40, 'each file sent once over both runs: the resume sends exactly what the master lacked');
  assert.deepEqual(
    (({ done, failed, skipped: s, pending, uploaded }) => ({ done, failed, skipped: s, pending, uploaded }))(second.events.find((e) => e.event === 'summary')!),
    { done: 40, failed: 0, skipped: 2, pending: 0, uploaded: 0 },
  );
  const tasks = (await getJson(`${master.url}/tasks?limit=1000`)).body;
  assert.equal(tasks.tasks.length, 40, '40 tasks at the master, none twice');
  const job = (await getJson(`${master.url}/jobs/${jobId}`)).body;
  assert.equal(job.total, 40);
  assert.equal(job.counts.done, 40);
  assert.ok(job.finishedAt);
  assert.equal(job.etaSeconds, 0);
  assertResults(out, kinds);

  // A third run changes nothing: no upload, no download.
  const third = await runStreaming(args, env);
  assert.equal(third.code, 0, third.stderr);
  assert.deepEqual(third.events.filter((e) => e.event === 'uploaded' || e.event === 'done'), []);

  // jobs show lists the files with their state and result.
  const shown = await runCli(['jobs', 'show', String(jobId), '--state', path.join(dir, 'state')], env);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^job \d+ "photos-invert-\w+" \(invert\) active: 40\/40 ended \(40 done/);
  assert.match(shown.stdout, /pack\.zip!\/inner\/z3\.png\s+done\s+\d+\s+\S*pack\/inner\/z3\.invert\.png/);
  assert.match(shown.stdout, /notes\.txt\s+skipped\s+not a PNG/);
  const listed = await runCli(['jobs', 'list'], env);
  assert.match(listed.stdout, new RegExp(`^${jobId}\\s+photos-invert-\\w+\\s+invert\\s+active\\s+40/40`, 'm'));
});

test('a paused job: none of its 20 tasks is claimed while paused, though the worker works; all finish after resume', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  let worker: Awaited<ReturnType<typeof startWorkerProc>> | undefined;
  t.after(() => stopAll(worker, master, storage, registry));
  const dir = tempDir('jobs-pause-');
  const folder = path.join(dir, 'twenty');
  fs.mkdirSync(folder);
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(folder, `i${String(i).padStart(2, '0')}.png`), rgbaImage(10, 10, i + 1).png);
  const env = { REGISTRY_URL: registry.url };
  const args = ['images', 'submit', folder, '--job', 'pausing', '--out', path.join(dir, 'out'), '--state', path.join(dir, 'state')];

  const uploaded = await runCli(['--json', ...args, '--no-wait'], env);
  assert.equal(uploaded.code, 0, uploaded.stderr);
  const jobId = events(uploaded.stdout).find((e) => e.event === 'job')!.id;
  const paused = await runCli(['jobs', 'pause', 'pausing', '--state', path.join(dir, 'state')], env);
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, new RegExp(`^job ${jobId} "pausing" \\(swap-rg\\) paused: 0/20 ended .*20 pending`));

  // A worker that works: a task outside the job, sent after the job's 20, is done while they wait.
  worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  const other = await submit(master.url, rgbaImage(8, 8, 99).png);
  assert.equal(other.status, 201);
  await waitForTask(master.url, other.body.id, ['done']);
  const during = (await getJson(`${master.url}/jobs/${jobId}`)).body;
  assert.equal(during.state, 'paused');
  assert.deepEqual(during.counts, { pending: 20, running: 0, done: 0, failed: 0 });
  assert.equal(during.startedAt, null, 'no task of it was ever claimed');

  const resumed = await runCli(['jobs', 'resume', String(jobId)], env);
  assert.equal(resumed.code, 0, resumed.stderr);
  const finished = await runCli(['--json', ...args], env);
  assert.equal(finished.code, 0, finished.stderr);
  assert.equal(events(finished.stdout).filter((e) => e.event === 'done').length, 20);
  assert.equal(fs.readdirSync(path.join(dir, 'out', 'twenty')).length, 20);

  // Cancel: a new job's pending tasks fail with the reason, and it takes no more uploads.
  await runCli(['jobs', 'pause', String(jobId)], env);
  const job2 = (await (await fetch(`${master.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'doomed', op: 'invert' }) })).json()) as { id: number };
  const paused2 = await fetch(`${master.url}/jobs/${job2.id}/pause`, { method: 'POST' });
  assert.equal(paused2.status, 200);
  const up = await fetch(`${master.url}/tasks?job=${job2.id}`, { method: 'POST', headers: { 'content-type': 'image/png', 'idempotency-key': 'k1' }, body: new Uint8Array(rgbaImage(4, 4, 1).png) });
  assert.equal(up.status, 201);
  const again = await fetch(`${master.url}/tasks?job=${job2.id}`, { method: 'POST', headers: { 'content-type': 'image/png', 'idempotency-key': 'k1' }, body: new Uint8Array(rgbaImage(4, 4, 1).png) });
  assert.equal(again.status, 200, 'the same key again: the same task');
  assert.equal(((await again.json()) as { id: number }).id, ((await up.json()) as { id: number }).id);
  const cancelled = await runCli(['jobs', 'cancel', String(job2.id)], env);
  assert.match(cancelled.stdout, /cancelled: 1\/1 ended \(0 done, 1 failed/);
  const tasks = (await getJson(`${master.url}/jobs/${job2.id}/tasks`)).body.tasks;
  assert.equal(tasks[0].error, 'cancelled: its job was cancelled');
  const late = await fetch(`${master.url}/tasks?job=${job2.id}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(rgbaImage(4, 4, 2).png) });
  assert.equal(late.status, 409);
  assert.equal(((await late.json()) as { error: { code: string } }).error.code, 'job_cancelled');
  for (const [url, status, code] of [
    [`${master.url}/jobs/999999`, 404, 'job_not_found'],
    [`${master.url}/jobs/abc`, 400, 'invalid_job_id'],
    [`${master.url}/tasks?job=999999`, 404, 'job_not_found'],
    [`${master.url}/tasks?job=x1`, 400, 'invalid_job_id'],
  ] as const) {
    const res = url.includes('/tasks') ? await fetch(url, { method: 'POST', body: new Uint8Array(rgbaImage(4, 4, 2).png) }) : await fetch(url);
    assert.equal(res.status, status, url);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, code, url);
  }
});

test('a master restart in the middle of a job: the CLI finds the new master and finishes, every task once', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  let master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '1']);
  t.after(() => stopAll(worker, master, storage, registry));
  const dir = tempDir('jobs-restart-');
  const folder = path.join(dir, 'many');
  fs.mkdirSync(folder);
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(folder, `m${i}.png`), rgbaImage(40, 40, i + 1).png);
  let killed: Promise<unknown> | undefined;
  const run = runStreaming(['images', 'submit', folder, '--out', path.join(dir, 'out'), '--state', path.join(dir, 'state'), '--concurrency', '2'], { REGISTRY_URL: registry.url }, (e) => {
    if (e.event === 'uploaded' && e.bytes && !killed) {
      killed = (async () => {
        await waitFor(async () => (await getJson(`${master.url}/tasks?state=done&limit=1`)).body.tasks.length > 0, 'a first task done', 30_000).catch(() => undefined);
        await master.stop('SIGKILL');
        master = await startMasterProc(registry.url, {}, master.dataDir);
      })();
    }
  });
  const result = await run;
  await killed;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.events.filter((e) => e.event === 'done').length, 24);
  const tasks = (await getJson(`${master.url}/tasks?limit=1000`)).body.tasks;
  assert.equal(tasks.length, 24, 'none twice');
  assert.equal(fs.readdirSync(path.join(dir, 'out', 'many')).length, 24);
});

test('bad input: a corrupt archive, a zip bomb, unsafe entry names, a folder of no PNGs, a file changed under the CLI', async (t) => {
  const registry = await startRegistry();
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url);
  t.after(() => stopAll(worker, master, storage, registry));
  const dir = tempDir('jobs-bad-');
  const env = { REGISTRY_URL: registry.url, MAX_IMAGE_BYTES: String(256 * 1024), ZIP_MAX_BYTES: String(1024 * 1024) };
  const state = ['--state', path.join(dir, 'state'), '--out', path.join(dir, 'out')];
  const png = rgbaImage(8, 8, 1).png;
  const jobsAtMaster = async () => (await getJson(`${master.url}/jobs`)).body.jobs.length;

  const refusedWhole: [string, Buffer, RegExp][] = [
    ['corrupt.zip', Buffer.concat([zipOf([{ name: 'a.png', data: png }]).subarray(0, 40), Buffer.from('garbage')]), /corrupt\.zip is not a readable zip archive: End of central directory record signature not found/],
    ['liar.zip', zipOf([{ name: 'a.png', data: Buffer.alloc(200 * 1024), deflate: true, declaredSize: 100 }]), /liar\.zip: a\.png is corrupt: too many bytes in the stream.*; nothing was uploaded/],
    ['budget.zip', zipOf(Array.from({ length: 6 }, (_, i) => ({ name: `b${i}.png`, data: Buffer.alloc(200 * 1024), deflate: true }))), /budget\.zip claims more than 1\.0 MiB uncompressed in all.*zip bomb/],
  ];
  for (const [name, bytes, words] of refusedWhole) {
    fs.writeFileSync(path.join(dir, name), bytes);
    const result = await runCli(['images', 'submit', path.join(dir, name), ...state], env);
    assert.equal(result.code, 1, name);
    assert.match(result.stderr, words, name);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  }
  // One entry claiming 3 GiB: skipped with its claim; with nothing else in it, no job.
  fs.writeFileSync(path.join(dir, 'claims.zip'), zipOf([{ name: 'huge.png', data: Buffer.alloc(16), deflate: true, declaredSize: 3 * 2 ** 30 }]));
  const claims = await runCli(['images', 'submit', path.join(dir, 'claims.zip'), ...state], env);
  assert.equal(claims.code, 1);
  assert.match(claims.stderr, /skipped .*claims\.zip!\/huge\.png: claims 3072\.0 MiB uncompressed, more than the 0\.3 MiB an image may be/);
  assert.match(claims.stderr, /error: no PNG files to upload in .*claims\.zip \(1 skipped, see above\); no job was created/);
  // A folder of no PNGs.
  fs.mkdirSync(path.join(dir, 'empty', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'empty', 'sub', 'x.jpg'), 'jpeg?');
  const empty = await runCli(['images', 'submit', path.join(dir, 'empty'), ...state], env);
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /no PNG files to upload in .*empty \(1 skipped/);
  const missing = await runCli(['images', 'submit', path.join(dir, 'nope'), ...state], env);
  assert.equal(missing.stderr, `error: no such file or folder: ${path.join(dir, 'nope')}\n`);
  assert.equal(await jobsAtMaster(), 0, 'no job was created by any of them');

  // Unsafe names: refused one by one; the good entry goes; nothing lands outside --out.
  fs.writeFileSync(path.join(dir, 'slip.zip'), zipOf([{ name: '../../evil.png', data: png }, { name: '/tmp/evil.png', data: png }, { name: 'good.png', data: png }]));
  const slip = await runCli(['images', 'submit', path.join(dir, 'slip.zip'), ...state], env);
  assert.equal(slip.code, 0, slip.stderr);
  assert.match(slip.stderr, /skipped .*slip\.zip!\/\.\.\/\.\.\/evil\.png: refused: invalid relative path/);
  assert.match(slip.stderr, /skipped .*slip\.zip!\/\/tmp\/evil\.png: refused: absolute path/);
  assert.match(slip.stdout, /1 done, 0 failed, 2 skipped/);
  assert.ok(fs.existsSync(path.join(dir, 'out', 'slip', 'good.swap-rg.png')));
  assert.ok(!fs.existsSync(path.join(dir, 'evil.png')) && !fs.existsSync('/tmp/evil.png') && !fs.existsSync(path.join(path.dirname(dir), 'evil.png')));

  // A file that changes after it was hashed: the scan is recorded while no master is up, then the file gets new bytes
  // under its old size and mtime; the upload compares hashes and refuses it, and the next run sends what it holds.
  const folder = path.join(dir, 'changing');
  fs.mkdirSync(folder);
  const file = path.join(folder, 'c.png');
  fs.writeFileSync(file, png);
  fs.utimesSync(file, new Date(2026, 0, 1), new Date(2026, 0, 1));
  const other = await startRegistry();
  t.after(() => other.stop());
  const noMaster = await runCli(['images', 'submit', folder, ...state, '--timeout', '1'], { ...env, REGISTRY_URL: other.url });
  assert.equal(noMaster.code, 1);
  assert.match(noMaster.stderr, /the master did not answer for 1 s while creating the job/);
  // Another valid PNG of the same length.
  let seed = 2;
  while (rgbaImage(8, 8, seed).png.length !== png.length) seed++;
  const changed = rgbaImage(8, 8, seed).png;
  fs.writeFileSync(file, changed);
  fs.utimesSync(file, new Date(2026, 0, 1), new Date(2026, 0, 1));
  const refused = await runCli(['images', 'submit', folder, ...state], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /failed: .*c\.png: .*c\.png changed since it was scanned \(its content hash differs\); not sent/);
  const job = (await getJson(`${master.url}/jobs`)).body.jobs.find((j: { name: string }) => j.name.startsWith('changing-'));
  assert.equal(job.total, 0, 'no task of mixed or stale content');
  const resent = await runCli(['images', 'submit', folder, ...state], env);
  assert.equal(resent.code, 0, resent.stderr);
  assert.match(resent.stdout, /1 done, 0 failed/);
});

test('with an events service up, the CLI follows the task events (and polls only as a backstop)', async (t) => {
  const registry = await startRegistry();
  const events = await startEventsService(registry.url);
  const storage = await startStorageProc(registry.url);
  const master = await startMasterProc(registry.url);
  const worker = await startWorkerProc(registry.url, ['--concurrency', '2']);
  t.after(() => stopAll(worker, master, storage, events, registry));
  const dir = tempDir('jobs-news-');
  const folder = path.join(dir, 'twelve');
  fs.mkdirSync(folder);
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(folder, `n${i}.png`), rgbaImage(10, 10, i + 1).png);
  const run = await runStreaming(['images', 'submit', folder, '--out', path.join(dir, 'out'), '--state', path.join(dir, 'state')], { REGISTRY_URL: registry.url });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.events.filter((e) => e.event === 'news').map((e) => e.live), [true]);
  assert.equal(run.events.filter((e) => e.event === 'done').length, 12);
  assert.equal((await getJson(`${master.url}/tasks?limit=100`)).body.tasks.length, 12);
});
