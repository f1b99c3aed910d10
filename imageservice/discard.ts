import type { Request } from 'express';

/**
 * Reads and drops the rest of a refused request body, so the client gets to read our answer
 * instead of a reset connection; past `maxBytes` more, it hangs up instead.
 */
export function discardBody(req: Request, maxBytes: number): void {
  let seen = 0;
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes) req.destroy();
  });
  req.resume();
}
