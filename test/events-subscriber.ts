/**
 * A registered service that subscribes to events, for the events tests: registers as $NAME with the
 * patterns in $BROADCAST and $BALANCED (comma-separated), mounts events/client.ts's event endpoint,
 * and shows what it handled at GET /received. With HANDLER_DELAY_MS, each event takes that long;
 * with FAIL_TIMES=n, the handler throws the first n times it sees an event whose payload has fail: true.
 */
import express from 'express';
import { startService } from '../shared/service.ts';
import { runMain } from '../shared/main.ts';
import { eventSubscriber, type EventHandler } from '../events/client.ts';

const name = process.env.NAME ?? 'subscriber';
const patterns = (value: string | undefined) => (value ?? '').split(',').filter(Boolean);
const delayMs = Number(process.env.HANDLER_DELAY_MS ?? 0);
let failures = Number(process.env.FAIL_TIMES ?? 0);
const received: { subscription: string; id: number; topic: string; seq: number; payload: unknown }[] = [];
let gaps = 0;

const record =
  (subscription: string): EventHandler =>
  async (event) => {
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if ((event.payload as { fail?: boolean } | null)?.fail && failures > 0) {
      failures--;
      throw new Error('this handler fails on purpose');
    }
    received.push({ subscription, id: event.id, topic: event.topic, seq: event.seq, payload: event.payload });
  };

const subscriber = eventSubscriber({
  broadcast: Object.fromEntries(patterns(process.env.BROADCAST).map((p) => [p, record('broadcast')])),
  balanced: Object.fromEntries(patterns(process.env.BALANCED).map((p) => [p, record('balanced')])),
  onGap: (dropped) => (gaps += dropped),
});

await runMain(name, () =>
  startService({
    name,
    metadata: subscriber.metadata,
    routes: () => {
      const router = express.Router();
      router.use(subscriber.router);
      router.get('/received', (_req, res) => res.json({ events: received, gaps }));
      return router;
    },
  }),
);
