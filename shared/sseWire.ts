/** The text/event-stream format: an event's bytes, the comment that keeps a connection alive, and the answer's headers. */
export const HEARTBEAT = Buffer.from(': keep-alive\n\n');
export const HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' };

export function encodeEvent(event: string | undefined, data: string, id?: string): Buffer {
  let text = id === undefined ? '' : `id: ${id}\n`;
  if (event) text += `event: ${event}\n`;
  text += `data: ${/[\r\n]/.test(data) ? data.split(/\r\n|\r|\n/).join('\ndata: ') : data}\n\n`;
  return Buffer.from(text);
}
