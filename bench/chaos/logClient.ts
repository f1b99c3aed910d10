/**
 * The chaos run's log client: a service (registers as $NAME, default "chaoslog") that requires
 * "log" and, after POST /start?count=N&rate=R, logs "chaos-line <i>" for i < N at about R lines/s
 * through the library's batching log shipper. GET /progress shows how far it got and the
 * shipper's counters (shipped, dropped past the buffer bound, buffered).
 */
import express from 'express';
import { startService, type Service } from '../../shared/service.ts';
import { logShipperOf, withLogShipping } from '../../logservice/client.ts';
import { runMain } from '../../shared/main.ts';

const name = process.env.NAME ?? 'chaoslog';
let emitted = 0;
let total = 0;
let finishedAt: number | undefined;

/** Logs the lines in slices of 10 ms, catching up when a slice ran late (a busy machine). */
async function emit(svc: Service, count: number, rate: number): Promise<void> {
  total = count;
  const started = Date.now();
  while (emitted < count) {
    const due = Math.min(count, Math.floor(((Date.now() - started) / 1000) * rate) + 1);
    for (; emitted < due; emitted++) svc.logger.info(`chaos-line ${emitted}`, { chaosLine: emitted });
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  finishedAt = Date.now();
}

await runMain(name, () =>
  startService(withLogShipping({
    name,
    requiredServices: ['log'],
    routes: (svc) => {
      const router = express.Router();
      router.post('/start', (req, res) => {
        if (total > 0) {
          res.status(409).json({ error: { code: 'started', message: 'already started' } });
          return;
        }
        void emit(svc, Number(req.query.count ?? 100_000), Number(req.query.rate ?? 1000));
        res.json({ started: true });
      });
      router.get('/progress', (_req, res) => {
        const s = logShipperOf(svc)!;
        res.json({ total, emitted, finishedAt, shipped: s.shipped, dropped: s.dropped, rejected: s.rejected, buffered: s.buffered, posts: s.posts, retries: s.retries });
      });
      return router;
    },
  })),
);
