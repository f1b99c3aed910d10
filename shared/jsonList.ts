import type { ServerResponse } from 'node:http';

/** About this many characters per write. */
const PIECE = 64 * 1024;

/**
 * Answers 200 with `{"<key>": [...items]}`, serialized item by item and written in pieces of about
 * 64 KiB. The same bytes as one JSON.stringify, but a listing of thousands never becomes one
 * multi-megabyte string and buffer: each piece dies young, so ten listings a second of 5,000
 * instances leave no large garbage for the old generation to collect later. Serialized in one turn,
 * so the listing is of one moment.
 */
export function sendJsonList<T>(res: ServerResponse, key: string, items: readonly T[], view: (item: T) => unknown): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  let piece = `{${JSON.stringify(key)}:[`;
  for (let i = 0; i < items.length; i++) {
    piece += (i === 0 ? '' : ',') + JSON.stringify(view(items[i]));
    if (piece.length >= PIECE) {
      res.write(piece);
      piece = '';
    }
  }
  res.end(`${piece}]}`);
}
