/**
 * A server-sent-events reader on a raw socket (HTTP/1.0, so no chunked framing; no client library and
 * no timers of its own) that can hold off reading: a reader that never calls read() never takes a byte.
 */
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { EventBlocks } from '../shared/sse.ts';

export interface RawEvent {
  event: string;
  data: string;
  id?: string;
}

export class RawEventReader {
  readonly events: RawEvent[] = [];
  comments = 0;
  ended = false;
  private readonly socket: net.Socket;

  constructor(url: string, options: { reading?: boolean; lastEventId?: string } = {}) {
    const { hostname, port, pathname, search } = new URL(url);
    this.socket = net.connect(Number(port), hostname);
    const lastEventId = options.lastEventId ? `Last-Event-ID: ${options.lastEventId}\r\n` : '';
    this.socket.write(`GET ${pathname}${search} HTTP/1.0\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n${lastEventId}\r\n`);
    for (const end of ['end', 'close', 'error']) this.socket.on(end, () => (this.ended = true));
    if (options.reading !== false) this.read();
  }

  /** Starts (or resumes) reading. */
  read(): void {
    const decoder = new StringDecoder('utf8');
    const blocks = new EventBlocks();
    // The response's headers end in CRLF CRLF; they join the first block, whose lines match no field.
    this.socket.on('data', (chunk: Buffer) => blocks.feed(decoder.write(chunk).replace(/\r\n/g, '\n'), (block) => this.parse(block)));
  }

  private parse(block: string): void {
    const event: RawEvent = { event: 'message', data: '' };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('event: ')) event.event = line.slice(7);
      else if (line.startsWith('id: ')) event.id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length === 0) return;
    event.data = data.join('\n');
    this.events.push(event);
  }

  named(name: string): RawEvent[] {
    return this.events.filter((e) => e.event === name);
  }

  close(): void {
    this.socket.destroy();
  }
}
