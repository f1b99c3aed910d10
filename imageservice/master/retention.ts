/**
 * Retention of finished images (the master drives it, since it alone knows which images belong to
 * finished tasks): for each done or failed task older than the retention, its images are deleted
 * from storage (working and finished) and then the task. A crash between the two leaves a task whose
 * images are gone, which the next run finishes (a missing image counts as deleted); never an image
 * with no task. Pending and running tasks are never touched, however old. Images no task owns
 * (an upload whose task was never created) go too, once older than the retention and an hour.
 */
import express from 'express';
import { z } from 'zod';
import { IMAGE_STATES } from '../protocol.ts';
import type { StorageClient } from '../storage/client.ts';
import type { TaskStore } from './taskStore.ts';
import { classifyUpstream } from '../../shared/apiError.ts';
import { HttpError, methodNotAllowed } from '../../shared/errors.ts';
import { parseBody } from '../../shared/validate.ts';
import { bearerMatches } from '../../shared/auth.ts';
import { parseDuration, HousekeepingStopped, type Housekeeping, type HousekeepingJob, type JobReport } from '../../shared/housekeeping.ts';

export const RETENTION_JOB = 'image-retention';

/** Tasks read from the database at a time. */
const PAGE = 200;

/** An image with no task is only an orphan past this age: younger, its upload may still be creating its task. */
const ORPHAN_MIN_AGE_MS = 3_600_000;

export interface PruneReport extends JobReport {
  removed: { tasks: number; images: number; orphans: number };
}

/** Removes the images, then the tasks, of what finished more than `olderThanMs` ago. */
export async function pruneFinished(tasks: TaskStore, storage: StorageClient, olderThanMs: number, now = Date.now()): Promise<PruneReport> {
  const removed = { tasks: 0, images: 0, orphans: 0 };
  const cutoff = now - olderThanMs;
  let afterId = 0;
  for (;;) {
    const page = await tasks.finishedBefore(cutoff, afterId, PAGE);
    if (page.length === 0) break;
    for (const { id, imageKey } of page) {
      afterId = id;
      try {
        for (const state of IMAGE_STATES) if (await storage.delete(state, imageKey)) removed.images++;
      } catch (err) {
        // Storage away (or refusing): keep this task and the rest for the next run, and say why.
        return { removed, error: `task ${id}'s images could not be deleted (${storageTrouble(err)}); it and the rest are kept for the next run` };
      }
      if (await tasks.removeFinished(id)) removed.tasks++;
    }
  }
  // Images no task owns (the master stopped between storing an upload and creating its task).
  const orphanCutoff = now - Math.max(olderThanMs, ORPHAN_MIN_AGE_MS);
  try {
    for (const state of IMAGE_STATES) {
      for (const image of await storage.listBefore(state, orphanCutoff, PAGE * 5)) {
        if (!(await tasks.hasImageKey(image.id)) && (await storage.delete(state, image.id))) removed.orphans++;
      }
    }
  } catch (err) {
    return { removed, error: `looking for images with no task failed (${storageTrouble(err)})` };
  }
  return { removed, detail: `finished before ${new Date(cutoff).toISOString()}` };
}

function storageTrouble(err: unknown): string {
  const failure = classifyUpstream(err);
  if (!failure) return (err as Error).message;
  if (failure.kind === 'answered') return `storage answered ${failure.status}`;
  return failure.kind === 'no_provider' ? failure.message : failure.reason;
}

/** The scheduled job: the configured retention. */
export function retentionJob(tasks: TaskStore, storage: StorageClient, settings: { retentionMs: number; retentionCron: string | undefined }): HousekeepingJob {
  return { name: RETENTION_JOB, cron: settings.retentionCron, run: () => pruneFinished(tasks, storage, settings.retentionMs) };
}

const pruneBody = z.object({
  olderThan: z
    .string()
    .refine((text) => parseDuration(text) !== undefined, { message: 'must be a duration such as 7d, 12h, 30m or 45s' })
    .optional(),
}).strict();

/**
 * POST /tasks/prune {olderThan?}: a retention run now (after the scheduled one, if it is running), with
 * the configured retention or an age of its own. With REGISTRY_TOKEN set it needs the token, like changes
 * to the registry; a browser on another site is refused by createApp's cross-site check.
 */
export function pruneRoutes(options: { housekeeping: Housekeeping | undefined; tasks: TaskStore; storage: StorageClient; retentionMs: number; token?: string }): express.Router {
  const router = express.Router();
  router.post('/tasks/prune', async (req, res) => {
    if (options.token && !bearerMatches(req.get('authorization'), options.token)) {
      throw new HttpError(401, 'unauthorized', 'pruning needs Authorization: Bearer <REGISTRY_TOKEN>', { 'WWW-Authenticate': 'Bearer' });
    }
    const { olderThan } = parseBody(pruneBody, req.body ?? {}, 'invalid_prune');
    const olderThanMs = olderThan ? parseDuration(olderThan)! : options.retentionMs;
    const work = () => pruneFinished(options.tasks, options.storage, olderThanMs);
    let report: PruneReport;
    try {
      report = (await (options.housekeeping ? options.housekeeping.run(RETENTION_JOB, work) : work())) as PruneReport;
    } catch (err) {
      if (err instanceof HousekeepingStopped) throw new HttpError(503, 'stopping', err.message, { 'Retry-After': '1' });
      throw err;
    }
    if (report.error) {
      throw new HttpError(503, 'storage_unavailable', `removed ${report.removed.tasks} tasks, ${report.removed.images} images and ${report.removed.orphans} images with no task, then stopped: ${report.error}`, { 'Retry-After': '5' });
    }
    res.json({ olderThanMs, removed: report.removed });
  });
  router.all('/tasks/prune', methodNotAllowed(['POST']));
  return router;
}
