/** HTTP for tests and benchmarks: a JSON GET with a timeout, a request with exactly the given headers, and a stub service. */
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
