/** One server-sent event: its name ("message" when unnamed) and its data lines joined. */
export interface ServerSentEvent {
  event: string;
  data: string;
  id?: string;
}

/** Why a stream ended badly: it never connected, the server answered an error status, or it broke. */
export class EventStreamError extends Error {
  constructor(
    readonly phase: 'connect' | 'status' | 'stream',
    message: string,
    readonly status = 0,
  ) {
    super(message);
    this.name = 'EventStreamError';
  }
}

/** Splits a decoded event stream into blocks (the text between blank lines), scanning each byte once. */
export class EventBlocks {
  private parts: string[] = [];
  private endsWithNewline = false;

  feed(text: string, onBlock: (block: string) => void): void {
    let start = 0;
    if (this.endsWithNewline && text.startsWith('\n')) {
      onBlock(this.parts.join('').slice(0, -1));
      this.parts = [];
      start = 1;
    }
    let end: number;
    while ((end = text.indexOf('\n\n', start)) >= 0) {
      this.parts.push(text.slice(start, end));
      onBlock(this.parts.join(''));
      this.parts = [];
      start = end + 2;
    }
    if (start < text.length) this.parts.push(text.slice(start));
    this.endsWithNewline = this.parts.length > 0 && text.endsWith('\n');
  }
}

/** One block's fields: an event when it has data (comments and a lone `retry:` are not events). */
function parseBlock(block: string): { event?: ServerSentEvent; retry?: number } {
  const event: ServerSentEvent = { event: 'message', data: '' };
  const data: string[] = [];
  let retry: number | undefined;
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event.event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') event.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
  }
  if (data.length === 0) return { retry };
  event.data = data.join('\n');
  return { event, retry };
}

/**
 * Follows a text/event-stream until the signal aborts or the server ends it, calling onEvent for
 * each event. Rejects when it can't connect (connectTimeoutMs) or the server answers an error status.
 * A server that cut us off for reading too slowly (shared/sseHub.ts: `event: disconnect`, reason
 * "slow_reader") is asked again with Last-Event-ID, so the events resume (or a fresh snapshot comes).
 */
export async function readEventStream(
  url: string,
  onEvent: (event: ServerSentEvent) => void,
  signal: AbortSignal,
  connectTimeoutMs = 5000,
  /** Sent on every connect (the read token's Authorization, shared/auth.ts authorizationOf). */
  headers: Record<string, string> = {},
): Promise<void> {
  // A connection of its own, closed with the stream. Through fetch's shared pool, a stream ended early (aborted,
  // or its reader cancelled) left a fresh connection behind that never served a request (nodejs/undici#5845), and
  // the server's graceful close waited for it until its deadline: the launcher's registry took 1 s more to stop.
  // undici is loaded here, when a stream is first followed, not by every service that only imports a client. A
  // CommonJS package: its exports are the default of what import() gives, in node and in the bundles alike.
  const { Agent, fetch } = (await import('undici')).default;
  const dispatcher = new Agent({ connections: 1 });
  const open: Open = (sent, opening) => fetch(url, { headers: sent, signal: opening, dispatcher });
  let lastEventId: string | undefined;
  let retryMs = 1000;
  try {
    for (;;) {
      let cutOff = false;
      await followOnce(open, url, signal, connectTimeoutMs, lastEventId, headers, ({ event, retry }) => {
        if (retry !== undefined) retryMs = retry;
        if (!event) return;
        if (event.id !== undefined) lastEventId = event.id;
        if (event.event !== 'disconnect') return onEvent(event);
        cutOff = (JSON.parse(event.data) as { reason?: string }).reason === 'slow_reader';
      });
      if (!cutOff || signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(retryMs, 10_000)));
      if (signal.aborted) return;
    }
  } finally {
    void dispatcher.destroy().catch(() => undefined);
  }
}

/** The stream's request, on its own connection (readEventStream). */
type Open = (headers: Record<string, string>, signal: AbortSignal) => ReturnType<typeof import('undici').fetch>;

async function followOnce(
  open: Open,
  url: string,
  signal: AbortSignal,
  connectTimeoutMs: number,
  lastEventId: string | undefined,
  extraHeaders: Record<string, string>,
  onBlock: (block: ReturnType<typeof parseBlock>) => void,
): Promise<void> {
  // The deadline covers connecting and the answer's headers; the stream itself may then last.
  const connecting = new AbortController();
  const timer = setTimeout(() => connecting.abort(new Error(`no answer from ${url} within ${connectTimeoutMs} ms`)), connectTimeoutMs);
  let response: Awaited<ReturnType<Open>>;
  try {
    const headers: Record<string, string> = { ...extraHeaders, accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    response = await open(headers, AbortSignal.any([signal, connecting.signal]));
  } catch (err) {
    if (signal.aborted) return;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new EventStreamError('connect', `${new URL(url).origin} is unreachable (${cause ?? (err as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok || !response.body) {
    const text = await response.text().catch(() => '');
    throw new EventStreamError('status', `${url} answered ${response.status}${text ? `: ${text.slice(0, 300)}` : ''}`, response.status);
  }
  const decoder = new TextDecoder();
  const blocks = new EventBlocks();
  try {
    for await (const chunk of response.body) {
      blocks.feed(decoder.decode(chunk as Uint8Array, { stream: true }).replace(/\r\n/g, '\n'), (block) => onBlock(parseBlock(block)));
    }
  } catch (err) {
    if (!signal.aborted) throw new EventStreamError('stream', `the stream from ${url} broke: ${(err as Error).message}`);
  }
}
