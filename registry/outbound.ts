import { Agent, Client, type Dispatcher } from 'undici';

/** How an outbound call ended. 'connection' errors (refused, reset) are strong evidence of death. */
export type OutboundResult =
  | { ok: true; status: number; latencyMs: number }
  | { ok: false; kind: 'timeout' | 'connection' | 'status'; status?: number; message: string; latencyMs: number; cause?: string };

/** Errors that mean we gave up waiting, as opposed to the peer refusing or dropping the connection. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** Connection ends that we caused ourselves (an abort, our idle timeout, shutting down): no news about the peer. */
const OWN_CLOSE_CODES = new Set(['UND_ERR_INFO', 'UND_ERR_DESTROYED', 'UND_ERR_CLOSED', 'UND_ERR_ABORTED']);

/**
 * Connections to one host:port at most; more requests wait for one of them, and the wait counts toward their
 * deadline. A takeover's burst to many instances behind one origin (a proxy; the benchmark's load process)
 * opened 600 sockets without it, and the replica that held them spent more CPU on the same 1,000 checks a
 * second (5.5-8.7 % of a core against 4.4 %) for as long as it held them. As many as checks in flight by
 * default (HEARTBEAT_CONCURRENCY), so checks alone never wait, nor does a fan-out to distinct origins.
 */
export const MAX_CONNECTIONS_PER_ORIGIN = 128;

/**
 * The registry's own calls (heartbeats and patches) through undici: keep-alive connections, and
 * less CPU per request than node's http client. That matters for a fan-out: a change with 100
 * dependents is 100 requests built and written at once. Measured side by side (200 rounds of a
 * patch to 100 dependents in one process): building the 100 requests took 4.0 ms with node's
 * client and 1.3 ms with undici, and the last answer came 10.3 ms and 6.5-7.6 ms after the change.
 */
export class Outbound {
  private readonly agent: Agent;
  private readonly targets = new Map<string, { origin: string; path: string }>();

  /**
   * `onPeerClosed(hostPort)` hears when a peer closes one of our connections (FIN or reset):
   * a process that dies takes its sockets with it, which is news worth a check at once.
   */
  constructor(onPeerClosed?: (hostPort: string) => void) {
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: MAX_CONNECTIONS_PER_ORIGIN });
    if (onPeerClosed) {
      this.agent.on('disconnect', (origin, _targets, err) => {
        const code = (err as { code?: string } | undefined)?.code;
        if (code !== undefined && OWN_CLOSE_CODES.has(code)) return;
        onPeerClosed(hostPort(new URL(String(origin))));
      });
    }
  }

  /** Sends one request with a hard deadline; `fresh` skips the pooled connections. */
  async request(
    method: 'GET' | 'POST',
    url: string,
    timeoutMs: number,
    body?: string | Uint8Array,
    fresh = false,
    headers: Record<string, string> = {},
  ): Promise<OutboundResult> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    const target = this.target(url);
    if (!target) return { ok: false, kind: 'connection', message: `invalid URL ${url}`, latencyMs: 0 };
    const dispatcher: Dispatcher = fresh ? new Client(target.origin, { pipelining: 0 }) : this.agent;
    const options: Dispatcher.DispatchOptions = {
      origin: target.origin,
      path: target.path,
      method,
      // JSON unless the caller names the body's type (the events service forwards bodies as they came).
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    };
    const ended = await exchange(dispatcher, options, timeoutMs);
    if (fresh) void dispatcher.destroy().catch(() => undefined);
    if ('status' in ended) {
      const { status } = ended;
      if (status >= 200 && status < 300) return { ok: true, status, latencyMs: elapsed() };
      return { ok: false, kind: 'status', status, message: `answered ${status}`, latencyMs: elapsed() };
    }
    if (ended.timedOut) return { ok: false, kind: 'timeout', message: `no answer within ${timeoutMs} ms`, latencyMs: elapsed() };
    const { code, message } = ended;
    if (code !== undefined && TIMEOUT_CODES.has(code)) return { ok: false, kind: 'timeout', message: `no answer within ${timeoutMs} ms`, latencyMs: elapsed() };
    // Refused, reset, unreachable, hang-up: the peer is not there to answer.
    return { ok: false, kind: 'connection', message: code && !message.includes(code) ? `${code}: ${message}` : message, latencyMs: elapsed(), cause: code };
  }

  destroy(): void {
    void this.agent.destroy().catch(() => undefined);
  }

  /** Origin and path of a URL, memoised: the same heartbeat and update URLs come back every interval. */
  private target(url: string): { origin: string; path: string } | undefined {
    let target = this.targets.get(url);
    if (target === undefined) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return undefined;
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
      target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
      if (this.targets.size > 100_000) this.targets.clear();
      this.targets.set(url, target);
    }
    return target;
  }
}

/** A peer's answer body beyond this is not read: the status is all we use. */
const MAX_ANSWER_BYTES = 64 * 1024;

type Ended = { status: number } | { timedOut: true } | { timedOut: false; code?: string; message: string };

/**
 * One request through undici's dispatch interface, with a hard deadline: the status once the answer has ended
 * (its body read and dropped), or why it failed. Cheaper than request(), which makes a body stream and an abort
 * signal for each call; in a fan-out to 100 dependents that is 100 of each per change.
 */
function exchange(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, timeoutMs: number): Promise<Ended> {
  return new Promise((resolve) => {
    const handler = new Exchange(resolve, timeoutMs);
    try {
      dispatcher.dispatch(options, handler);
    } catch (err) {
      handler.end({ timedOut: false, code: (err as { code?: string }).code, message: (err as Error).message });
    }
  });
}

/** One exchange's handler: a class, so a call allocates one object rather than a closure per callback. */
class Exchange implements Dispatcher.DispatchHandler {
  private controller?: Dispatcher.DispatchController;
  private status = 0;
  private received = 0;
  private done = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (ended: Ended) => void,
    timeoutMs: number,
  ) {
    // The deadline answers at once, even while a connection is still being made (it is aborted once it starts).
    this.timer = setTimeout(() => this.end({ timedOut: true }, new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  }

  end(ended: Ended, abort?: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (abort) this.controller?.abort(abort);
    this.resolve(ended);
  }

  onRequestStart(started: Dispatcher.DispatchController): void {
    this.controller = started;
    if (this.done) started.abort(new Error('the deadline passed'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.received += chunk.length;
    if (this.received > MAX_ANSWER_BYTES) this.end({ status: this.status }, new Error('answer body too long; only its status is used'));
  }

  onResponseEnd(): void {
    this.end({ status: this.status });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.end({ timedOut: false, code: (err as { code?: string }).code, message: err.message });
  }
}

/** "host:port" of a URL, as peerClosed() names the origin of a connection. */
export function hostPort(url: URL): string {
  return `${url.hostname.replace(/^\[|\]$/g, '')}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
}
