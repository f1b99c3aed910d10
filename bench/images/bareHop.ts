/**
 * The pipeline's floor, for bench:images' side-by-side row of the bare hops: one role of the pipeline
 * (`bareHop.ts storage|master|worker|frontend`), doing only what moves an image along the same hops in
 * bare node:http: no framework, registry, logging, validation, metrics or task database. Storage keeps
 * the promise with the storage service's own ImageStore (the file written, fdatasynced and renamed, its
 * directory fsynced before the 201); the master keeps its tasks in a Map. What the real services cost above these is their own.
 * Each server prints "listening on <url>" (the worker "ready") and finds the others through STORAGE_URL and MASTER_URL.
 */
import http from 'node:http';
import { buffer } from 'node:stream/consumers';
import os from 'node:os';
import { TransformPool } from '../../imageservice/worker/pool.ts';
import { lowerPriority } from '../../imageservice/worker/priority.ts';
import { ImageStore } from '../../imageservice/storage/store.ts';
import { imagePathParams } from '../../imageservice/protocol.ts';
import { storageDefaults } from '../../imageservice/storage/config.ts';

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

/** One request with a whole body; resolves with the status and the answer's body. */
function send(url: string, method: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: body ? { 'content-length': body.length } : {}, timeout: 60_000 }, (res) => {
      buffer(res).then((bytes) => resolve({ status: res.statusCode!, body: bytes }), reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 60 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The storage service's own ImageStore (each image written, fdatasynced and renamed, its folder fsynced before the 201), behind bare node:http. */
async function storage(): Promise<void> {
  const store = new ImageStore(process.env.DATA_DIR!);
  await store.open();
  serve(async (req, res) => {
    const [, state, id] = req.url!.split('/');
    const address = imagePathParams.safeParse({ state, id });
    if (!address.success) return json(res, 404, { error: { code: 'not_found', message: 'no such image' } });
    if (req.method === 'PUT') {
      await store.write(address.data.state, address.data.id, req, storageDefaults.maxImageBytes);
      res.writeHead(201).end();
      return;
    }
    const found = await store.read(address.data.state, address.data.id);
    if (!found) return json(res, 404, { error: { code: 'not_found', message: 'no such image' } });
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': found.size });
    if ('bytes' in found) res.end(found.bytes);
    else found.stream.pipe(res);
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
      const put = http.request(`${storageUrl}/working/${task}`, { method: 'PUT', headers: { 'content-length': req.headers['content-length'] }, timeout: 60_000 }, (answer) => {
        answer.resume();
        if (answer.statusCode !== 201) return json(res, 502, { error: { code: 'storage_refused', message: `storage answered ${answer.statusCode}` } });
        states.set(task, 'pending');
        pending.push(task);
        hand();
        json(res, 201, { id: task });
      });
      put.on('timeout', () => put.destroy(new Error('storage did not answer within 60 s')));
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
    const form = await buffer(req);
    const start = form.indexOf('\r\n\r\n') + 4;
    const end = form.indexOf(`\r\n--${boundary[1] ?? boundary[2]}`, start);
    if (start < 4 || end < 0) return json(res, 400, { error: { code: 'bad_multipart', message: 'the form has no file part' } });
    const answer = await send(`${masterUrl}/tasks`, 'POST', form.subarray(start, end));
    res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': answer.body.length }).end(answer.body);
  });
}

const roles: Record<string, () => void | Promise<void>> = { storage, master, worker, frontend };
await roles[process.argv[2]]();
