/**
 * A raw HTTP/1.1 client over a TCP socket, for requests no well-behaved client would send: bad
 * framing, duplicate or huge headers, bodies streamed slowly or far past a limit. It reads the
 * answer while it is still sending, so a server that answers early (413) is seen answering early.
 */
import net from 'node:net';

export interface RawAnswer {
  /** 0 when no answer came (the connection closed or timed out first). */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Bytes of the request (head and body) the socket took before the answer arrived. */
  sentBeforeAnswer: number;
  /** Bytes of the request the socket took in all. */
  sent: number;
  /** How the exchange ended: 'answered', 'closed' (by the server, no answer), 'timeout', or an error code. */
  ending: string;
  ms: number;
}

export interface RawRequest {
  /** Everything up to and including the blank line, as sent. */
  head: string | Buffer;
  /** Body parts, written one after the other with backpressure; a function makes them lazily. */
  body?: Iterable<Buffer> | AsyncIterable<Buffer>;
  /** Gives up after this long. */
  timeoutMs?: number;
  /** Keep writing the body after the answer came (to see whether the server keeps reading it). */
  writeAfterAnswer?: boolean;
  /** Close as soon as the answer is complete (default true). */
  closeOnAnswer?: boolean;
}

/** Parses a response head; undefined until the blank line is in. */
function parseHead(buffer: Buffer): { status: number; headers: Record<string, string>; headLength: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, headLength: end + 4 };
}

/** Whether a response body is complete (content-length or chunked), given the bytes after the head. */
function bodyComplete(headers: Record<string, string>, body: Buffer): boolean {
  if (headers['content-length'] !== undefined) return body.length >= Number(headers['content-length']);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) return body.includes('\r\n0\r\n\r\n') || body.subarray(0, 5).toString() === '0\r\n\r\n';
  return false;
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(body.subarray(at, lineEnd).toString(), 16);
    if (!size) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export function rawExchange(url: string, request: RawRequest): Promise<RawAnswer> {
  const target = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(Number(target.port), target.hostname);
    let received = Buffer.alloc(0);
    let head: ReturnType<typeof parseHead>;
    let sent = 0;
    let sentBeforeAnswer = -1;
    let done = false;
    let writing = true;
    const finish = (ending: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      writing = false;
      socket.destroy();
      const bodyBytes = head ? received.subarray(head.headLength) : Buffer.alloc(0);
      const body = head && /chunked/i.test(head.headers['transfer-encoding'] ?? '') ? dechunk(bodyBytes) : bodyBytes;
      resolve({
        status: head?.status ?? 0,
        headers: head?.headers ?? {},
        body: body.toString('utf8'),
        sentBeforeAnswer: sentBeforeAnswer < 0 ? sent : sentBeforeAnswer,
        sent,
        ending: head ? 'answered' : ending,
        ms: Math.round(performance.now() - started),
      });
    };
    const timer = setTimeout(() => finish('timeout'), request.timeoutMs ?? 15_000);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!head) {
        head = parseHead(received);
        if (head && head.status === 100) {
          received = received.subarray(head.headLength);
          head = parseHead(received);
        }
        if (head) sentBeforeAnswer = sent;
      }
      if (head && bodyComplete(head.headers, received.subarray(head.headLength))) {
        if (request.writeAfterAnswer && writing) return;
        if (request.closeOnAnswer ?? true) finish('answered');
      }
    });
    socket.on('end', () => finish('closed'));
    socket.on('close', () => finish('closed'));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    socket.on('connect', () => {
      void (async () => {
        const write = (data: Buffer | string) =>
          new Promise<void>((ok) => {
            if (done || socket.destroyed) return ok();
            const size = Buffer.byteLength(data);
            if (socket.write(data)) {
              sent += size;
              return ok();
            }
            const settle = (drained: boolean) => {
              socket.off('drain', onDrain);
              socket.off('close', onClose);
              if (drained) sent += size;
              ok();
            };
            const onDrain = () => settle(true);
            const onClose = () => settle(false);
            socket.on('drain', onDrain);
            socket.on('close', onClose);
          });
        await write(request.head);
        if (request.body) {
          for await (const part of request.body as AsyncIterable<Buffer>) {
            if (done || !writing || socket.destroyed) break;
            if (head && !request.writeAfterAnswer) break;
            await write(part);
          }
        }
        writing = false;
        if (head && bodyComplete(head.headers, received.subarray(head.headLength))) finish('answered');
      })();
    });
  });
}

/** A request head from a method, path and header lines (each "Name: value"), as raw text. */
export function requestHead(method: string, path: string, host: string, headerLines: string[]): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${headerLines.map((line) => `${line}\r\n`).join('')}\r\n`;
}

/** `total` bytes in parts of `partSize`, made lazily (never held at once). */
export function* zeros(total: number, partSize = 256 * 1024, fill = 0x20): Generator<Buffer> {
  const part = Buffer.alloc(partSize, fill);
  for (let left = total; left > 0; left -= partSize) yield left >= partSize ? part : part.subarray(0, left);
}

/** The same, framed as chunked transfer encoding (without the final zero chunk when `endless`). */
export function* chunked(total: number, partSize = 256 * 1024, fill = 0x20): Generator<Buffer> {
  for (const part of zeros(total, partSize, fill)) {
    yield Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]);
  }
  yield Buffer.from('0\r\n\r\n');
}
