/**
 * The chaos run's dependent services: $COUNT services in one process (named watcher-1…), each
 * requiring $REQUIRES, each with its own port, registration and provider table, shown at
 * GET /debug/providers. One process keeps 20 watchers cheap on a small machine while each is
 * still a full service to the registry. Prints "watchers ready <json urls>" once all listen.
 */
import express from 'express';
import { startService, type Service } from '../../shared/service.ts';
import { withLogShipping } from '../../logservice/client.ts';
import { runMain } from '../../shared/main.ts';

const count = Number(process.env.COUNT ?? 20);
const first = Number(process.env.FIRST ?? 1);
const requiredServices = (process.env.REQUIRES ?? 'imagemaster,imagestorage,imageworker,log').split(',').filter(Boolean);
// Ships its lines when it requires the log service, as every starter of such a service does.
const shipping = requiredServices.includes('log') ? withLogShipping : <T>(options: T) => options;

function watcher(name: string): Promise<Service> {
  return startService(shipping({
    name,
    requiredServices,
    routes: (svc) => {
      const router = express.Router();
      router.get('/debug/providers', (_req, res) => {
        res.json({ name, instanceId: svc.instanceId, providers: svc.providers.snapshot() });
      });
      return router;
    },
  }));
}

await runMain('watchers', async () => {
  const services = await Promise.all(Array.from({ length: count }, (_, i) => watcher(`watcher-${first + i}`)));
  process.stdout.write(`watchers ready ${JSON.stringify(services.map((s) => s.url))}\n`);
  return { stop: async () => void (await Promise.all(services.map((s) => s.stop()))) };
});
