/**
 * The roles bench/registry.ts runs in child processes: `load` serves every heartbeat and patch endpoint
 * (so the registry's CPU is its own); `victim` is a provider to SIGKILL (with `close`, it refuses
 * keep-alive, so only the schedule can find its death).
 */
import http from 'node:http';
import { now } from './cluster.ts';

/** A patch as the load process received it: when, for which subscriber, and the URLs it added and removed. */
export interface Receipt {
  at: number;
  subscriber: string;
  added: string[];
  removed: string[];
}

export function runLoad(): void {
  const receipts: Receipt[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url.endsWith('/heartbeat')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('ok');
      return;
    }
    if (req.method === 'GET' && url === '/_count') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(String(receipts.length));
      return;
    }
    if (req.method === 'GET' && url.startsWith('/_receipts')) {
      const since = Number(new URL(url, 'http://x').searchParams.get('since') ?? 0);
      const body = JSON.stringify({ total: receipts.length, receipts: receipts.slice(since) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = now();
      if (req.method === 'POST' && url.endsWith('/services')) {
        try {
          const patch = JSON.parse(Buffer.concat(chunks).toString()) as { added?: { url: string }[]; removed?: { url: string }[] };
          receipts.push({ at, subscriber: url.slice(0, -'/services'.length), added: (patch.added ?? []).map((e) => e.url), removed: (patch.removed ?? []).map((e) => e.url) });
        } catch {
          // not a patch
        }
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`LOAD http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
  });
}

export function runVictim(closeEach: boolean): void {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, closeEach ? { connection: 'close' } : {}).end('ok');
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`VICTIM http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
  });
}
