import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';

/** How an outbound call ended. 'connection' errors (refused, reset) are strong evidence of death. */
export type OutboundResult =
  | { ok: true; status: number; latencyMs: number }
  | { ok: false; kind: 'timeout' | 'connection' | 'status'; status?: number; message: string; latencyMs: number };

/**
 * Keep-alive agents for the registry's own calls (heartbeats and patches): one small
 * request per instance per interval, so connection reuse is most of the cost saved.
 */
export class Outbound {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  /**
   * `onPeerClosed(hostPort)` hears when a peer closes one of our connections (FIN or reset):
   * a process that dies takes its sockets with it, which is news worth a check at once.
   */
  constructor(onPeerClosed?: (hostPort: string) => void, maxFreeSockets = 256) {
    const agentOptions = { keepAlive: true, maxFreeSockets, scheduling: 'lifo' as const };
    this.httpAgent = watch(new http.Agent(agentOptions), onPeerClosed);
    this.httpsAgent = watch(new https.Agent(agentOptions), onPeerClosed);
  }

  /** Sends one request with a hard deadline; `fresh` skips the pooled connections. */
  request(
    method: 'GET' | 'POST',
    url: string,
    timeoutMs: number,
    body?: string,
    fresh = false,
    headers: Record<string, string> = {},
  ): Promise<OutboundResult> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    return new Promise((resolve) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        resolve({ ok: false, kind: 'connection', message: `invalid URL ${url}`, latencyMs: 0 });
        return;
      }
      const secure = target.protocol === 'https:';
      const transport = secure ? https : http;
      const agent = fresh ? false : secure ? this.httpsAgent : this.httpAgent;
      let settled = false;
      const finish = (result: OutboundResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = transport.request(target, {
        method,
        agent,
        headers:
          body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      });
      const timer = setTimeout(() => {
        finish({ ok: false, kind: 'timeout', message: `no answer within ${timeoutMs} ms`, latencyMs: elapsed() });
        req.destroy();
      }, timeoutMs);
      req.on('response', (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        res.on('end', () =>
          finish(ok ? { ok: true, status, latencyMs: elapsed() } : { ok: false, kind: 'status', status, message: `answered ${status}`, latencyMs: elapsed() }),
        );
        res.on('error', (err) => finish({ ok: false, kind: 'connection', message: err.message, latencyMs: elapsed() }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // Refused, reset, unreachable, hang-up: the peer is not there to answer.
        finish({ ok: false, kind: 'connection', message: err.code ? `${err.code}: ${err.message}` : err.message, latencyMs: elapsed() });
      });
      req.end(body);
    });
  }

  destroy(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** Hooks each new connection of an agent so that a close by the peer is reported (once per socket). */
function watch<A extends http.Agent>(agent: A, onPeerClosed?: (hostPort: string) => void): A {
  if (!onPeerClosed) return agent;
  const create = (agent as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection.bind(agent);
  (agent as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    const options = args[0] as { host?: string; port?: number | string };
    const hostPort = `${(options.host ?? 'localhost').replace(/^\[|\]$/g, '')}:${options.port ?? ''}`;
    let reported = false;
    const report = () => {
      if (reported) return;
      reported = true;
      onPeerClosed(hostPort);
    };
    socket.once('end', report);
    socket.once('error', report);
    return socket;
  };
  return agent;
}
