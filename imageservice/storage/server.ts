/**
 * The storage service (registers as `imagestorage`): PNG bytes by state and id.
 * PUT/GET/HEAD/DELETE /images/:state/:id, where state is working|finished and id matches
 * ^[A-Za-z0-9_-]{1,64}$; anything else is a 400 before any path is built. The bytes live in a BlobStore:
 * files under DATA_DIR (BLOB_STORE=fs) or an S3 bucket that any number of nodes share (BLOB_STORE=s3).
 */
import express, { type ErrorRequestHandler, type Request } from 'express';
import { startService, type Service } from '../../shared/service.ts';
import { withLogShipping } from '../../logservice/client.ts';
import { serviceConfig } from '../../shared/config.ts';
import { STORAGE_DEFAULT_PORT, STORAGE_SERVICE, storageDefaults, type BlobStoreSettings, type StorageOptions } from './config.ts';
import { HttpError, methodNotAllowed } from '../../shared/errors.ts';
import { parseWith } from '../../shared/validate.ts';
import { prom } from '../../shared/metrics.ts';
import { z } from 'zod';
import { imagePathParams, imageStateSchema } from '../protocol.ts';
import { ImageStore } from './store.ts';
import { BodyInterruptedError, BodyTooLargeError } from './body.ts';
import { BlobStoreError, BlobStoreUnavailableError, type BlobStore } from './blobStore.ts';
import { discardBody } from '../discard.ts';

const listBeforeQuery = z.object({
  before: z.coerce.number().int().min(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

function imageAddress(req: Request) {
  return parseWith(imagePathParams, req.params, 'invalid_image_address');
}

/** The blob store the settings name; the S3 client is loaded only when it is used, so the default start pays nothing for it. */
async function createStore(settings: BlobStoreSettings, dataDir: string, fsync: boolean): Promise<BlobStore> {
  if (settings.kind === 'fs') return new ImageStore(dataDir, { fsync });
  const { S3ImageStore } = await import('./s3Store.ts');
  return new S3ImageStore(settings);
}

/** The blob store's failures in the one error shape: an engine that is away is a 503 to retry, not a 500. */
const blobStoreErrors: ErrorRequestHandler = (err, _req, _res, next) => {
  if (err instanceof BlobStoreUnavailableError) return next(new HttpError(503, 'blob_store_unavailable', err.message, { 'Retry-After': '2' }));
  if (err instanceof BlobStoreError) return next(new HttpError(502, 'blob_store_error', err.message));
  next(err);
};

export async function startStorage(options: StorageOptions = {}): Promise<Service> {
  const limit = options.maxImageBytes ?? storageDefaults.maxImageBytes;
  const config = { ...serviceConfig(STORAGE_SERVICE, STORAGE_DEFAULT_PORT), ...options.config };
  const store = await createStore(options.blobStore ?? { kind: 'fs' }, config.dataDir, options.fsync ?? storageDefaults.fsync);
  // An S3 that is away at start is not fatal: requests answer 503 meanwhile and the first write makes the bucket.
  const unavailableAtStart = await store.open().then(
    () => undefined,
    (err: unknown) => {
      if (err instanceof BlobStoreUnavailableError) return err;
      throw err;
    },
  );
  const service = await startService(withLogShipping({
    name: STORAGE_SERVICE,
    requiredServices: ['log'],
    defaultPort: STORAGE_DEFAULT_PORT,
    config,
    // Large images take a while on a slow link; the body limit bounds them, not the clock.
    timeouts: { requestTimeoutMs: 120_000 },
    routes: (svc) => {
      const bytesWritten = new prom.Counter({ name: 'imagestorage_bytes_written_total', help: 'Image bytes stored', registers: [svc.metrics] });
      const operations = new prom.Counter({
        name: 'imagestorage_operations_total',
        help: 'Storage operations by method and result',
        labelNames: ['method', 'result'],
        registers: [svc.metrics],
      });
      const router = express.Router();

      router.put('/images/:state/:id', async (req, res) => {
        const { state, id } = imageAddress(req);
        const declared = Number(req.get('content-length') ?? NaN);
        if (declared > limit) {
          operations.inc({ method: 'PUT', result: 'too_large' });
          discardBody(req, Math.min(declared, 2 * limit));
          throw new HttpError(413, 'payload_too_large', `the image is ${declared} bytes, more than the limit of ${limit} bytes`);
        }
        try {
          const bytes = await store.write(state, id, req, limit);
          bytesWritten.inc(bytes);
          operations.inc({ method: 'PUT', result: 'ok' });
          svc.logger.info(`stored ${state}/${id} (${bytes} bytes)`);
          res.status(201).json({ state, id, bytes });
        } catch (err) {
          if (err instanceof BodyTooLargeError) {
            operations.inc({ method: 'PUT', result: 'too_large' });
            throw new HttpError(413, 'payload_too_large', err.message);
          }
          if (err instanceof BodyInterruptedError) {
            operations.inc({ method: 'PUT', result: 'interrupted' });
            throw new HttpError(400, 'request_aborted', `${err.message}: nothing was stored`);
          }
          throw err;
        }
      });

      router.get('/images/:state/:id', async (req, res) => {
        const { state, id } = imageAddress(req);
        const image = await store.read(state, id);
        if (!image) {
          operations.inc({ method: 'GET', result: 'not_found' });
          throw new HttpError(404, 'image_not_found', `no ${state} image ${id}`);
        }
        operations.inc({ method: 'GET', result: 'ok' });
        svc.logger.info(`read ${state}/${id} (${image.size} bytes)`);
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': image.size });
        if ('bytes' in image) {
          res.end(image.bytes);
          return;
        }
        const { stream } = image;
        stream.pipe(res);
        stream.on('error', () => res.destroy());
        // A client that hangs up mid-download (a worker killed while reading) must not leave the file open until GC.
        res.on('close', () => stream.destroy());
      });

      router.head('/images/:state/:id', async (req, res) => {
        const { state, id } = imageAddress(req);
        const stat = await store.stat(state, id);
        if (!stat) throw new HttpError(404, 'image_not_found', `no ${state} image ${id}`);
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': stat.size }).end();
      });

      router.delete('/images/:state/:id', async (req, res) => {
        const { state, id } = imageAddress(req);
        if (!(await store.remove(state, id))) throw new HttpError(404, 'image_not_found', `no ${state} image ${id}`);
        operations.inc({ method: 'DELETE', result: 'ok' });
        svc.logger.info(`removed ${state}/${id}`);
        res.status(204).end();
      });

      router.all('/images/:state/:id', methodNotAllowed(['GET', 'HEAD', 'PUT', 'DELETE']));
      // The master's retention asks which images are old, to remove those no task knows (an upload whose task was never made).
      router.get('/images/:state', async (req, res) => {
        const { state } = parseWith(z.object({ state: imageStateSchema }), req.params, 'invalid_image_address');
        const { before, limit } = parseWith(listBeforeQuery, req.query, 'invalid_query');
        res.json({ images: await store.listBefore(state, before, limit) });
      });
      router.all('/images/:state', methodNotAllowed(['GET']));
      // Any other shape under /images (a slash in the id, a missing part) is a bad address, not a missing route.
      router.all('/images/*rest', (req) => {
        throw new HttpError(400, 'invalid_image_address', `${req.path} is not /images/<working|finished>/<id> with an id of 1-64 letters, digits, "_" or "-"`);
      });
      router.use(blobStoreErrors);
      return router;
    },
  }));
  if (unavailableAtStart) service.logger.warn(`${unavailableAtStart.message}; answering 503 until it is back`);
  service.addShutdownStep(() => store.close?.());
  return service;
}
