/**
 * The upload page's jobs (the jobs section of page.ts): a job made here, its images sent one by one from a dropped
 * folder (with the page's idempotency keys) or as one .zip that is read here with the CLI's reader, its progress,
 * pause and resume, and all its results as one .zip. Everything goes through the master's /jobs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from 'winston';
import { HttpError, methodNotAllowed } from '../../shared/errors.ts';
import { parseBody, parseWith } from '../../shared/validate.ts';
import { IDEMPOTENCY_HEADER, createJobBody, idempotencyKeySchema, jobIdParams } from '../jobProtocol.ts';
import type { JobClient } from '../master/jobClient.ts';
import type { MasterClient } from '../master/client.ts';
import { readPngUpload } from '../master/upload.ts';
import { zipLimits } from '../bulk/commands.ts';
import { isPng, sha256 } from '../bulk/scan.ts';
import { uploadKey } from '../bulk/manifest.ts';
import { ArchiveError, ZipArchive } from '../bulk/zipArchive.ts';
import { ZipWriter } from './zipWriter.ts';

const resultsBody = z.object({ names: z.record(z.string(), z.string().max(1000)).default({}) });

/** A name from the page or an archive as a path inside the results .zip: no "..", no leading "/", no control characters. */
export function resultName(name: string | undefined, id: number, op: string): string {
  const parts = (name ?? '').replace(/\\/g, '/').split('/').map((p) => p.replace(/[\u0000-\u001f\u007f]/g, '')).filter((p) => p && p !== '.' && p !== '..');
  if (parts.length === 0) return `task-${id}.${op}.png`;
  const base = parts.pop()!.replace(/\.png$/i, '');
  return [...parts, `${base}.${op}.png`].join('/');
}

/** Streams a request body to `file`, refusing it past `maxBytes`. */
async function saveBody(req: Request, file: string, maxBytes: number): Promise<void> {
  const declared = Number(req.get('content-length') ?? NaN);
  if (declared > maxBytes) throw new HttpError(413, 'payload_too_large', `the archive is ${declared} bytes, more than the limit of ${maxBytes} bytes`);
  let received = 0;
  const bound = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      done(received > maxBytes ? new HttpError(413, 'payload_too_large', `the archive is larger than the limit of ${maxBytes} bytes`) : null, chunk);
    },
  });
  await pipeline(req, bound, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
}

export interface FrontendJobSettings {
  maxUploadBytes: number;
  maxArchiveBytes: number;
}

export function jobRoutes(clients: { jobs: JobClient; master: MasterClient }, settings: FrontendJobSettings, log: Logger, fromMaster: (err: unknown) => never): Router {
  const { jobs, master } = clients;
  const router = express.Router();
  const idOf = (req: Request) => parseWith(jobIdParams, req.params, 'invalid_job_id').id;

  router.post('/jobs', async (req, res) => {
    const { name, op } = parseBody(createJobBody, req.body);
    res.status(201).json(await jobs.create(name, op).catch(fromMaster));
  });
  router.get('/jobs/:id', async (req, res) => {
    res.json(await jobs.get(idOf(req)).catch(fromMaster));
  });
  router.post('/jobs/:id/pause', async (req, res) => {
    res.json(await jobs.pause(idOf(req)).catch(fromMaster));
  });
  router.post('/jobs/:id/resume', async (req, res) => {
    res.json(await jobs.resume(idOf(req)).catch(fromMaster));
  });

  // One PNG of a dropped folder, with the page's key (so a retried or resumed send is the same task).
  router.post('/jobs/:id/images', async (req, res) => {
    const id = idOf(req);
    const key = parseWith(idempotencyKeySchema, req.get(IDEMPOTENCY_HEADER), 'invalid_idempotency_key');
    const { png } = await readPngUpload(req, { maxBytes: settings.maxUploadBytes, maxPixels: Number.MAX_SAFE_INTEGER });
    const { task, created } = await jobs.upload(png, id, key).catch(fromMaster);
    res.status(created ? 201 : 200).json(task);
  });

  // A dropped .zip: kept in a private temporary folder while it is read (never unpacked), then removed.
  router.post('/jobs/:id/archive', async (req, res) => {
    const id = idOf(req);
    const job = await jobs.get(id).catch(fromMaster);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-archive-'));
    const file = path.join(dir, 'upload.zip');
    try {
      await saveBody(req, file, settings.maxArchiveBytes);
      let opened;
      try {
        opened = await ZipArchive.open(file, zipLimits());
      } catch (err) {
        throw err instanceof ArchiveError ? new HttpError(422, 'bad_archive', err.message.replace(file, 'the archive')) : err;
      }
      const { archive, entries, skipped } = opened;
      const tasks: { name: string; task: number }[] = [];
      const refused = skipped.map((s) => ({ name: s.entry, reason: s.reason }));
      try {
        for (const entry of entries) {
          const bytes = await archive.read(entry.name);
          if (!isPng(bytes)) {
            refused.push({ name: entry.name, reason: 'not a PNG' });
            continue;
          }
          const { task } = await jobs.upload(bytes, id, uploadKey(`zip:${entry.name}`, sha256(bytes))).catch(fromMaster);
          tasks.push({ name: entry.name, task: task.id });
        }
      } catch (err) {
        throw err instanceof ArchiveError ? new HttpError(422, 'bad_archive', err.message.replace(file, 'the archive')) : err;
      } finally {
        archive.close();
      }
      log.info(`archive for job ${id} (${job.name}): ${tasks.length} images sent, ${refused.length} skipped`);
      res.json({ tasks, skipped: refused });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // Every done task's result in one .zip, under the names the page knows (else task-<id>).
  router.post('/jobs/:id/results.zip', async (req, res) => {
    const id = idOf(req);
    const { names } = parseBody(resultsBody, req.body ?? {});
    const [job, tasks] = await Promise.all([jobs.get(id), jobs.tasks(id)]).catch(fromMaster);
    const done = tasks.filter((t) => t.state === 'done');
    if (done.length === 0) throw new HttpError(409, 'no_results', `job ${id} has no finished image yet`);
    res.type('application/zip').set('content-disposition', `attachment; filename="job-${id}.zip"`);
    const zip = new ZipWriter((chunk) => res.write(chunk));
    const used = new Set<string>();
    for (const task of done) {
      let name = resultName(names[String(task.id)], task.id, job.op);
      for (let n = 2; used.has(name); n++) name = name.replace(/(-\d+)?(\.[^.]+\.png)$/, `-${n}$2`);
      const png = await master.result(task.id).catch(() => undefined);
      if (!png || !zip.fits(name, png.length)) continue;
      used.add(name);
      zip.add(name, png);
    }
    zip.finish();
    res.end();
  });

  router.all('/jobs', methodNotAllowed(['POST']));
  router.all('/jobs/:id', methodNotAllowed(['GET']));
  for (const action of ['pause', 'resume', 'images', 'archive', 'results.zip']) router.all(`/jobs/:id/${action}`, methodNotAllowed(['POST']));
  return router;
}
