/**
 * The pipeline's floor, for bench:images' side-by-side row of the bare hops: one role of the pipeline
 * (`bareHop.ts storage|master|worker|frontend`), doing only what moves an image along the same hops in
 * bare node:http: no framework, registry, logging, validation, metrics or task database. Storage keeps
 * the promise (the file written, fdatasynced and renamed, its directory fsynced before the 201); the
 * master keeps its tasks in a Map. What the real services cost above these is their own.
 * Each server prints "listening on <url>" (the worker "ready") and finds the others through STORAGE_URL and MASTER_URL.
 */
import http from 'node:http';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TransformPool } from '../../imageservice/worker/pool.ts';
import { lowerPriority } from '../../imageservice/worker/priority.ts';
import { GroupSync } from '../../imageservice/storage/groupSync.ts';
import { syncDirectory } from '../../shared/files.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> | void;

function serve(handler: Handler): void {
  const server = http.createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(err.message);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function gather(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** One request with a whole body; resolves with the status and the answer's body. */
function send(url: string, method: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: body ? { 'content-length': body.length } : {}, timeout: 60_000 }, (res) => {
      gather(res).then((bytes) => resolve({ status: res.statusCode!, body: bytes }), reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 60 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Files by state and id, each written whole before its answer: gathered about 1 MiB per writev, fdatasync, rename, the folder's fsync (shared by the renames that wait for it); read in one call. */
async function storage(): Promise<void> {
  const dir = process.env.DATA_DIR!;
  for (const state of ['working', 'finished', 'tmp']) await fsp.mkdir(path.join(dir, state), { recursive: true });
  const syncs = new Map<string, GroupSync>();
  const folderSync = (state: string) => syncs.get(state) ?? syncs.set(state, new GroupSync(() => syncDirectory(path.join(dir, state)))).get(state)!;
  let written = 0;
  serve(async (req, res) => {
    const [, state, id] = req.url!.split('/');
    if (!['working', 'finished'].includes(state) || !/^\d+$/.test(id ?? '')) return json(res, 404, { error: { code: 'not_found', message: 'no such image' } });
    const file = path.join(dir, state, `${id}.png`);
    if (req.method !== 'PUT') {
      const handle = await fsp.open(file, 'r');
      const bytes = Buffer.allocUnsafe((await handle.stat()).size);
      await handle.read(bytes, 0, bytes.length, 0);
      await handle.close();
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': bytes.length }).end(bytes);
      return;
    }
    const tmp = path.join(dir, 'tmp', `${id}.${written++}`);
    const handle = await fsp.open(tmp, 'wx');
    let chunks: Buffer[] = [];
    let pending = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      pending += chunk.length;
      if (pending < 1 << 20) continue;
      await handle.writev(chunks);
      chunks = [];
      pending = 0;
    }
    if (chunks.length) await handle.writev(chunks);
    await handle.datasync();
    await handle.close();
    await fsp.rename(tmp, file);
    await folderSync(state).request();
    res.writeHead(201).end();
  });
}

/** Tasks in memory: an upload streamed into storage, then pending; claims answered at once or when one comes. */
function master(): void {
  const storageUrl = process.env.STORAGE_URL!;
  const states = new Map<number, string>();
  const pending: number[] = [];
  const claims: http.ServerResponse[] = [];
  const hand = () => {
    while (pending.length && claims.length) {
      const id = pending.shift()!;
      states.set(id, 'running');
      json(claims.shift()!, 200, { id });
    }
  };
  let next = 0;
  serve((req, res) => {
    const [pathname] = req.url!.split('?');
    const [, , id, action] = pathname.split('/');
    if (req.method === 'POST' && pathname === '/tasks') {
      const task = ++next;
      const put = http.request(`${storageUrl}/working/${task}`, { method: 'PUT', headers: { 'content-length': req.headers['content-length'] } }, (answer) => {
        answer.resume();
        states.set(task, 'pending');
        pending.push(task);
        hand();
        json(res, 201, { id: task });
      });
      put.on('error', (err) => json(res, 502, { error: { code: 'storage_unavailable', message: err.message } }));
      req.pipe(put);
    } else if (pathname === '/claim') {
      // A claim waits for a task up to 20 s, then is answered 204 and made again, as the worker's are.
      claims.push(res);
      const timer = setTimeout(() => {
        const waiting = claims.indexOf(res);
        if (waiting < 0) return; // handed a task meanwhile
        claims.splice(waiting, 1);
        res.writeHead(204).end();
      }, 20_000);
      res.on('finish', () => clearTimeout(timer));
      hand();
    } else if (action === 'done') {
      states.set(Number(id), 'done');
      res.writeHead(204).end();
    } else if (id) {
      json(res, 200, { state: states.get(Number(id)) ?? 'unknown' });
    } else {
      const counts: Record<string, number> = {};
      for (const state of states.values()) counts[state] = (counts[state] ?? 0) + 1;
      json(res, 200, { tasks: [], counts });
    }
  });
}

/** As the real worker at its defaults: a thread per core, one task more claimed ahead, the threads at nice 10. */
async function worker(): Promise<void> {
  const masterUrl = process.env.MASTER_URL!;
  const storageUrl = process.env.STORAGE_URL!;
  const pool = new TransformPool({ threads: os.availableParallelism(), codec: 'sharp' });
  lowerPriority(10);
  const slot = async () => {
    for (;;) {
      const claim = await send(`${masterUrl}/claim`, 'GET');
      if (claim.status === 204) continue;
      const { id } = JSON.parse(claim.body.toString()) as { id: number };
      const { body } = await send(`${storageUrl}/working/${id}`, 'GET');
      const result = await pool.run(body, 'swap-rg');
      if (!result.ok) throw new Error(result.error);
      await send(`${storageUrl}/finished/${id}`, 'PUT', Buffer.from(result.png.buffer, result.png.byteOffset, result.png.byteLength));
      await send(`${masterUrl}/tasks/${id}/done`, 'POST');
    }
  };
  for (let i = 0; i <= pool.threads; i++) {
    slot().catch((err: Error) => {
      process.stderr.write(`the bare worker stopped: ${err.message}\n`);
      process.exit(1);
    });
  }
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => process.exit(0));
}

/** The page's form gathered, its file part found with Buffer.indexOf and sent whole to the master. */
function frontend(): void {
  const masterUrl = process.env.MASTER_URL!;
  serve(async (req, res) => {
    const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(req.headers['content-type'] ?? '');
    if (!boundary) return json(res, 400, { error: { code: 'bad_request', message: 'a multipart form is required' } });
    const form = await gather(req as AsyncIterable<Buffer>);
    const start = form.indexOf('\r\n\r\n') + 4;
    const end = form.indexOf(`\r\n--${boundary[1] ?? boundary[2]}`, start);
    if (start < 4 || end < 0) return json(res, 400, { error: { code: 'bad_multipart', message: 'the form has no file part' } });
    const answer = await send(`${masterUrl}/tasks`, 'POST', form.subarray(start, end));
    res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': answer.body.length }).end(answer.body);
  });
}

const roles: Record<string, () => void | Promise<void>> = { storage, master, worker, frontend };
await roles[process.argv[2]]();
