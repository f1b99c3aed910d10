/** Shared parts of the events service's tests: the service as a process, and subscribers that record what they get. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startProcess, tempDir, type Proc } from './helpers.ts';

/** Fast settings: short keep-alive, quick retries. */
export const FAST_EVENTS_ENV = {
  EVENTS_KEEPALIVE_MS: '3000',
  EVENTS_RETRY_INITIAL_MS: '50',
  EVENTS_RETRY_MAX_MS: '300',
  EVENTS_DELIVERY_TIMEOUT_MS: '1000',
};

export async function startEventsService(registryUrl: string, env: Record<string, string> = {}, dataDir = tempDir('events-')): Promise<Proc & { dataDir: string }> {
  const proc = await startProcess('cmd/events.ts', { env: { ...FAST_EVENTS_ENV, REGISTRY_URL: registryUrl, DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env } });
  return Object.assign(proc, { dataDir });
}

export interface Received {
  body: Buffer;
  headers: http.IncomingHttpHeaders;
  at: number;
}

/**
 * A subscriber as the reference clients write one: an HTTP server whose POST /event records each
 * body with its headers. `hang` accepts deliveries and never answers them.
 */
export interface Recorder {
  port: number;
  address: string;
  received: Received[];
  hang: boolean;
  /** Bodies received, as text. */
  texts(): string[];
  close(): Promise<void>;
}

export async function startRecorder(options: { port?: number; hang?: boolean } = {}): Promise<Recorder> {
  const received: Received[] = [];
  const recorder = { received, hang: options.hang ?? false } as Recorder;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/event') {
        res.writeHead(404).end();
        return;
      }
      received.push({ body: Buffer.concat(chunks), headers: req.headers, at: Date.now() });
      if (recorder.hang) return;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(recorder, {
    port,
    address: `127.0.0.1:${port}`,
    texts: () => received.map((r) => r.body.toString()),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** POST /publish with a JSON body; answers status and body. */
export async function publish(eventsUrl: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${eventsUrl}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}

/** Starts the subscriber fixture (test/events-subscriber.ts) as a registered service. */
export async function startSubscriberService(
  registryUrl: string,
  options: { name: string; broadcast?: string[]; balanced?: string[]; port?: number; env?: Record<string, string> },
): Promise<Proc> {
  return startProcess('test/events-subscriber.ts', {
    env: {
      NAME: options.name,
      BROADCAST: (options.broadcast ?? []).join(','),
      BALANCED: (options.balanced ?? []).join(','),
      REGISTRY_URL: registryUrl,
      PORT: String(options.port ?? 0),
      LOG_LEVEL: 'info',
      ...options.env,
    },
  });
}

/** What the fixture received: [{subscription, id, topic, seq, payload}] in order of arrival. */
export async function receivedBy(proc: Proc): Promise<{ subscription: string; id: number; topic: string; seq: number; payload: any }[]> {
  const res = await fetch(`${proc.url}/received`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { events: any[] }).events;
}

/** The value of one metric line of GET /metrics (0 when absent), e.g. metricValue(url, 'events_dropped_total{reason="overflow"'). */
export async function metricValue(serviceUrl: string, prefix: string): Promise<number> {
  const text = await (await fetch(`${serviceUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(prefix) && (l[prefix.length] === ' ' || l[prefix.length] === '{' || l[prefix.length] === ','));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** GET /subscribers, by key. */
export async function subscriberViews(eventsUrl: string): Promise<Map<string, import('../events/protocol.ts').SubscriberView>> {
  const res = await fetch(`${eventsUrl}/subscribers`, { signal: AbortSignal.timeout(5000) });
  const { subscribers } = (await res.json()) as import('../events/protocol.ts').SubscribersListing;
  return new Map(subscribers.map((s) => [s.key, s]));
}
