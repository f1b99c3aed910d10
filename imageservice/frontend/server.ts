/**
 * The frontend (registers as `imagefrontend`): the upload page for people, and the reference
 * paths POST /submitTask (multipart field `uploadfile`), GET /isReady?id= and GET /getImage?id=.
 * It talks only to the master.
 */
import express, { type Request } from 'express';
import busboy from 'busboy';
import { z } from 'zod';
import { startService, type Service } from '../../shared/service.ts';
import { withLogShipping } from '../../logservice/client.ts';
import { FRONTEND_DEFAULT_PORT, FRONTEND_SERVICE, frontendDefaults, type FrontendOptions } from './config.ts';
import { HttpError, methodNotAllowed } from '../../shared/errors.ts';
import { parseWith } from '../../shared/validate.ts';
import { prom } from '../../shared/metrics.ts';
import { opSchema, OPS, type Op } from '../ops.ts';
import { MasterClient, MasterError } from '../master/client.ts';
import type { TaskView } from '../protocol.ts';
import { uploadPage } from './page.ts';
import { cspNonce } from '../../shared/pageHeaders.ts';
import { discardBody } from '../discard.ts';
import { withEvents, EVENTS_SERVICE } from '../../events/client.ts';
import { TaskStream, TASK_EVENTS } from './taskStream.ts';
import { JobClient } from '../master/jobClient.ts';
import { jobRoutes } from './jobRoutes.ts';

const idQuery = z.object({ id: z.coerce.number({ message: 'must be a task id' }).int('must be a task id').positive('must be a task id') });
const opQuery = z.object({ op: opSchema.optional() });

interface UploadedFile {
  png: Buffer;
  filename: string;
  op?: Op;
}

/** Reads one file from the `uploadfile` field (and an optional `op` field), within limits. */
function readMultipart(req: Request, maxBytes: number): Promise<UploadedFile> {
  const type = req.get('content-type') ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    return Promise.reject(new HttpError(415, 'not_multipart', 'send the image as multipart/form-data with the field "uploadfile"'));
  }
  const declared = Number(req.get('content-length') ?? NaN);
  if (declared > maxBytes + 64 * 1024) {
    discardBody(req, Math.min(declared, 2 * maxBytes));
    return Promise.reject(new HttpError(413, 'payload_too_large', `the upload is ${declared} bytes, more than the limit of ${maxBytes} bytes`));
  }
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fileSize: maxBytes, fields: 10, fieldSize: 1024, parts: 20 } });
    } catch (err) {
      reject(new HttpError(400, 'bad_multipart', `the form could not be read: ${(err as Error).message}`));
      return;
    }
    let file: UploadedFile | undefined;
    let op: string | undefined;
    let failure: HttpError | undefined;
    parser.on('file', (field, stream, info) => {
      if (field !== 'uploadfile') {
        failure ??= new HttpError(400, 'unexpected_field', `the file must be in the field "uploadfile", not "${field}"`);
        stream.resume();
        return;
      }
      // Copied into one buffer as it arrives (the form's length bounds the file): no chunk is held for the whole upload.
      const whole = Number.isSafeInteger(declared) && declared > 0 ? Buffer.allocUnsafe(Math.min(declared, maxBytes)) : undefined;
      let copied = 0;
      const rest: Buffer[] = []; // a chunked form's file, or (never, while the length holds) what would not fit
      stream.on('data', (chunk: Buffer) => {
        if (whole && rest.length === 0 && copied + chunk.length <= whole.length) copied += chunk.copy(whole, copied);
        else rest.push(chunk);
      });
      stream.on('limit', () => {
        failure ??= new HttpError(413, 'payload_too_large', `the file is larger than the limit of ${maxBytes} bytes`);
        stopEarly(failure);
      });
      stream.on('close', () => {
        if (stream.truncated) return;
        const head = whole ? whole.subarray(0, copied) : Buffer.alloc(0);
        file = { png: rest.length ? Buffer.concat([head, ...rest]) : head, filename: info.filename ?? 'image.png' };
      });
    });
    parser.on('field', (name, value) => {
      if (name === 'op') op = value;
    });
    parser.on('filesLimit', () => (failure ??= new HttpError(400, 'too_many_files', 'send one file per request')));
    parser.on('error', (err: Error) => reject(new HttpError(400, 'bad_multipart', `the form could not be read: ${err.message}`)));
    parser.on('close', () => {
      if (failure) return reject(failure);
      if (!file) return reject(new HttpError(400, 'missing_file', 'no file in the field "uploadfile"'));
      try {
        if (op !== undefined) file.op = parseWith(opSchema, op, 'invalid_op');
        resolve(file);
      } catch (err) {
        reject(err);
      }
    });
    // Refused at once, not after the rest of the body has been read: the server then hangs up on it.
    const stopEarly = (err: HttpError) => {
      req.unpipe(parser);
      req.off('data', count);
      reject(err);
    };
    let received = 0;
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes + 64 * 1024) stopEarly(new HttpError(413, 'payload_too_large', `the upload is larger than the limit of ${maxBytes} bytes`));
    };
    req.on('data', count);
    req.pipe(parser);
  });
}

/** The master's refusals reach people with their own words and status. */
function fromMaster(err: unknown): never {
  if (err instanceof MasterError) throw new HttpError(err.status >= 500 ? 502 : err.status, err.code, err.message);
  throw err;
}

function wantsJson(req: Request): boolean {
  return req.accepts(['text/plain', 'application/json']) === 'application/json' && (req.get('accept') ?? '').includes('json');
}

function readiness(task: TaskView): string {
  if (task.state === 'done') return 'Your image is ready.';
  if (task.state === 'failed') return `Your image could not be processed: ${task.error}`;
  return 'Your image is not ready yet.';
}

export async function startFrontend(options: FrontendOptions = {}): Promise<Service> {
  const maxUploadBytes = options.maxUploadBytes ?? frontendDefaults.maxUploadBytes;
  let eventsUp = () => false;
  const taskStream = new TaskStream(() => eventsUp());
  return startService(withLogShipping(withEvents({
    name: FRONTEND_SERVICE,
    // 'events' only to know whether task events flow (the page polls when they don't).
    requiredServices: ['imagemaster', 'log', EVENTS_SERVICE],
    defaultPort: FRONTEND_DEFAULT_PORT,
    config: options.config,
    timeouts: { requestTimeoutMs: 120_000 },
    onStop: () => taskStream.close(),
    routes: (svc) => {
      eventsUp = () => svc.providers.has(EVENTS_SERVICE);
      svc.onChange(EVENTS_SERVICE, () => taskStream.eventsChanged());
      const master = new MasterClient(svc.client('imagemaster'));
      const uploads = new prom.Counter({ name: 'imagefrontend_uploads_total', help: 'Uploads by result', labelNames: ['result'], registers: [svc.metrics] });
      const router = express.Router();

      router.get('/', (_req, res) => {
        res.type('html').send(uploadPage({ ops: OPS, maxUploadBytes, nonce: cspNonce(res) }));
      });

      router.post('/submitTask', async (req, res) => {
        const { op: queryOp } = parseWith(opQuery, req.query, 'invalid_op');
        let file: UploadedFile;
        try {
          file = await readMultipart(req, maxUploadBytes);
        } catch (err) {
          uploads.inc({ result: 'refused' });
          throw err;
        }
        const task = await master.submit(file.png, file.op ?? queryOp).catch((err) => {
          uploads.inc({ result: 'refused' });
          return fromMaster(err);
        });
        uploads.inc({ result: 'accepted' });
        svc.logger.info(`${file.filename} submitted as task ${task.id} (${task.op})`);
        if (wantsJson(req)) res.status(201).json(task);
        else res.status(200).type('text/plain').send(String(task.id));
      });

      router.get('/isReady', async (req, res) => {
        const { id } = parseWith(idQuery, req.query, 'invalid_id');
        const task = await master.get(id).catch(fromMaster);
        if (wantsJson(req)) res.json({ id, ready: task.state === 'done', state: task.state, error: task.error, task });
        else res.type('text/plain').send(readiness(task));
      });

      router.get('/getImage', async (req, res) => {
        const { id } = parseWith(idQuery, req.query, 'invalid_id');
        const png = await master.result(id).catch(fromMaster);
        // ?download=<name> asks for an attachment; the name is reduced to safe characters.
        const wanted = typeof req.query.download === 'string' ? req.query.download.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) : undefined;
        const filename = wanted && /\.png$/i.test(wanted) ? wanted : `image-${id}.png`;
        res.set('content-disposition', `${wanted !== undefined ? 'attachment' : 'inline'}; filename="${filename}"`).type('image/png').send(png);
      });

      router.get('/taskEvents', (req, res) => taskStream.open(req, res));
      const maxArchiveBytes = options.maxArchiveBytes ?? frontendDefaults.maxArchiveBytes;
      router.use(jobRoutes({ jobs: new JobClient(svc.client('imagemaster')), master }, { maxUploadBytes, maxArchiveBytes }, svc.logger, fromMaster));

      router.all('/submitTask', methodNotAllowed(['POST']));
      router.all('/taskEvents', methodNotAllowed(['GET']));
      router.all('/isReady', methodNotAllowed(['GET']));
      router.all('/getImage', methodNotAllowed(['GET']));
      return router;
    },
  }, { subscribe: { [TASK_EVENTS]: taskStream.handler } })));
}
