import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Proc {
  child: ChildProcess;
  /** The URL from the "listening on http://…" line. */
  url: string;
  output(): string;
  /** Sends a signal and waits for the exit; resolves with the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
  exited: Promise<number | string>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  args?: string[];
  /** Pattern whose first group is the URL; default: "listening on (http://…)". */
  ready?: RegExp;
  timeoutMs?: number;
  /** Options for node itself, before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts `node --import tsx <script>` and waits until it says where it listens. */
export async function startProcess(script: string, options: StartOptions = {}): Promise<Proc> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', path.resolve(ROOT, script), ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'debug', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let output = '';
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  const ready = options.ready ?? /listening on (http:\/\/\S+)/;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within ${options.timeoutMs ?? 30000} ms:\n${output}`)), options.timeoutMs ?? 30000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] ?? '');
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls until fn returns a truthy value (or throws on timeout with the last error). */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

export function tempDir(prefix = 'switchboard-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Fast registry settings for tests. */
export const FAST_REGISTRY_ENV = {
  HEARTBEAT_INTERVAL_MS: '150',
  HEARTBEAT_TIMEOUT_MS: '300',
  HEARTBEAT_FAILURES: '3',
  NOTIFY_TIMEOUT_MS: '500',
};

export async function startRegistry(env: Record<string, string> = {}, dataDir = tempDir('registry-')): Promise<Proc & { dataDir: string }> {
  const proc = await startProcess('cmd/registry.ts', { env: { ...FAST_REGISTRY_ENV, DATA_DIR: dataDir, ...env } });
  return Object.assign(proc, { dataDir });
}

export async function startFixture(name: string, registryUrl: string, requires: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  return startProcess('test/fixtures/service.ts', {
    env: { NAME: name, REQUIRES: requires.join(','), REGISTRY_URL: registryUrl, ...env },
  });
}

export async function getJson<T = any>(url: string, init?: RequestInit): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

export async function providersOf(proc: Proc): Promise<Record<string, string[]>> {
  return (await getJson(`${proc.url}/debug/providers`)).body.providers;
}

/** A patch as a stub subscriber received it, stamped with the wall-clock time of arrival. */
export interface ReceivedPatch {
  at: number;
  body: { added?: { name: string; url: string }[]; removed?: { name: string; url: string }[]; seq?: number };
  authorization?: string;
}

export interface Stub {
  url: string;
  patches: ReceivedPatch[];
  heartbeats: number;
  /** Registration fields for this stub (camelCase), to POST to a registry. */
  registration(name: string, requiredServices?: string[]): Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * A raw HTTP server standing in for a service in registry tests: answers GET /heartbeat with 200
 * and records every POSTed patch. With `hangPatches`, it accepts patch POSTs and never answers them.
 */
export async function startStub(options: { hangPatches?: boolean } = {}): Promise<Stub> {
  const http = await import('node:http');
  const patches: ReceivedPatch[] = [];
  const stub = { heartbeats: 0 } as Stub;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'GET') {
        stub.heartbeats++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      }
      const at = Date.now();
      let body: ReceivedPatch['body'] = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        // recorded as empty
      }
      patches.push({ at, body, authorization: req.headers.authorization });
      if (options.hangPatches) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  return Object.assign(stub, {
    url,
    patches,
    registration: (name: string, requiredServices: string[] = []) => ({
      serviceName: name,
      serviceURL: url,
      requiredServices,
      serviceUpdateURL: `${url}/services`,
      heartbeatURL: `${url}/heartbeat`,
    }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** Sends a request with exactly the given headers (fetch always adds a Content-Type to string bodies). */
export async function rawRequest(
  url: string,
  options: { method: string; body?: string | Buffer; headers?: Record<string, string> },
): Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined> }> {
  const http = await import('node:http');
  // Like Go's http.NewRequest with a bytes.Buffer: Content-Length, and no Content-Type unless given.
  const headers = { ...options.headers };
  if (options.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['content-length'] = String(Buffer.byteLength(options.body));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A port that was free a moment ago (bind port 0, read it, close), for processes that must come back on the same port. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as import('node:net').AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
