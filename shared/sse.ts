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

/**
 * Follows a text/event-stream until the signal aborts or the server ends it, calling onEvent for
 * each event. Rejects when it can't connect (connectTimeoutMs) or the server answers an error status.
 */
export async function readEventStream(
  url: string,
  onEvent: (event: ServerSentEvent) => void,
  signal: AbortSignal,
  connectTimeoutMs = 5000,
): Promise<void> {
  // The deadline covers connecting and the answer's headers; the stream itself may then last.
  const connecting = new AbortController();
  const timer = setTimeout(() => connecting.abort(new Error(`no answer from ${url} within ${connectTimeoutMs} ms`)), connectTimeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.any([signal, connecting.signal]), headers: { accept: 'text/event-stream' } });
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
  let buffer = '';
  try {
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true }).replace(/\r\n/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event: ServerSentEvent = { event: 'message', data: '' };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || line === '') continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.event = value;
          else if (field === 'data') data.push(value);
          else if (field === 'id') event.id = value;
        }
        if (data.length === 0) continue;
        event.data = data.join('\n');
        onEvent(event);
      }
    }
  } catch (err) {
    if (!signal.aborted) throw new EventStreamError('stream', `the stream from ${url} broke: ${(err as Error).message}`);
  }
}
