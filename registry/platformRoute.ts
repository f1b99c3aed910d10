import { Router } from 'express';
import { HttpError } from '../shared/errors.ts';
import { currentStatus } from '../shared/platformStatus.ts';

/**
 * GET /platform: what `platform ps` shows, as JSON, for the dashboard. The launcher gives every service
 * PLATFORM_STATUS_FILE; a registry not started by it answers 404 no_platform.
 */
export function platformStatusRoutes(file: string | undefined): Router {
  const router = Router();
  router.get('/platform', (_req, res) => {
    const status = file ? currentStatus(file) : undefined;
    if (!status) throw new HttpError(404, 'no_platform', 'this service was not started by the platform launcher (npm start)');
    const now = Date.now();
    res.json({ ...status, processes: status.processes.map((p) => ({ ...p, uptimeMs: p.pid !== null && p.startedAt !== null ? now - p.startedAt : null })) });
  });
  return router;
}
