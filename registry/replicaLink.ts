import type { Request, Response } from 'express';

/** GET /replicas/link: replicas hold it open to each other, so a peer's crash closes it at once. */
export function replicaLink(req: Request, res: Response): void {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.write('\n');
  req.socket.setKeepAlive(true, 1000);
}
