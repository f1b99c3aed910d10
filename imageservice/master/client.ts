/**
 * The typed client of the master: what workers, the frontend and the admin CLI call. Give it an
 * axios instance (svc.client('imagemaster'), with discovery and failover) or a fixed URL.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { ApiError, classifyUpstream } from '../../shared/apiError.ts';
import type { Op } from '../ops.ts';
import { asBuffer } from '../storage/client.ts';
import type { ClaimedTask, TaskState, TaskView } from '../protocol.ts';

/** The master answered with an error: its status, code and message. */
export class MasterError extends ApiError {
  override readonly name = 'MasterError';
}

/** Turns an error answer into a MasterError (connection errors pass through unchanged). */
function answerError(err: unknown): never {
  const failure = classifyUpstream(err);
  throw failure?.kind === 'answered' ? MasterError.answered(failure, 'the master') : err;
}

async function call<T>(request: Promise<AxiosResponse<T>>): Promise<AxiosResponse<T>> {
  try {
    return await request;
  } catch (err) {
    answerError(err);
  }
}

export class MasterClient {
  constructor(
    private readonly http: AxiosInstance,
    private readonly timeoutMs = 30_000,
  ) {}

  static fromUrl(url: string, timeoutMs?: number): MasterClient {
    return new MasterClient(axios.create({ baseURL: url.replace(/\/+$/, ''), timeout: timeoutMs ?? 30_000 }), timeoutMs);
  }

  async submit(png: Uint8Array, op?: Op, onUploadProgress?: (fraction: number) => void): Promise<TaskView> {
    const res = await call(
      this.http.post<TaskView>('/tasks', asBuffer(png), {
        params: op ? { op } : undefined,
        onUploadProgress: onUploadProgress && ((e) => onUploadProgress(e.total ? e.loaded / e.total : 0)),
        headers: { 'content-type': 'image/png' },
        timeout: Math.max(this.timeoutMs, 60_000),
        maxBodyLength: Infinity,
      }),
    );
    return res.data;
  }

  async get(id: number): Promise<TaskView> {
    return (await call(this.http.get<TaskView>(`/tasks/${id}`, { timeout: this.timeoutMs }))).data;
  }

  async list(options: { state?: TaskState; limit?: number } = {}): Promise<{ tasks: TaskView[]; counts: Record<TaskState, number> }> {
    return (await call(this.http.get(`/tasks`, { params: options, timeout: this.timeoutMs }))).data;
  }

  /** The finished PNG (throws MasterError 409 while the task is not done, 404 when unknown). */
  async result(id: number): Promise<Buffer> {
    const res = await call(
      this.http.get<ArrayBuffer>(`/tasks/${id}/result`, { responseType: 'arraybuffer', timeout: Math.max(this.timeoutMs, 60_000), maxContentLength: Infinity }),
    );
    return Buffer.from(res.data);
  }

  /** Removes done and failed tasks (and their images) older than `olderThan` ("7d"; default: the master's retention). */
  async prune(olderThan?: string, token?: string): Promise<{ olderThanMs: number; removed: { tasks: number; images: number; orphans: number } }> {
    const headers = token ? { authorization: `Bearer ${token}` } : undefined;
    // Removing a week of images may take a while: storage deletes one file at a time.
    return (await call(this.http.post('/tasks/prune', olderThan ? { olderThan } : {}, { headers, timeout: Math.max(this.timeoutMs, 120_000) }))).data;
  }

  /** Long-polls for a task: a leased task, or undefined when none came within waitMs. */
  async claim(workerId: string, waitMs: number, signal?: AbortSignal): Promise<ClaimedTask | undefined> {
    const res = await call(this.http.post<ClaimedTask>('/tasks/claim', { workerId, waitMs }, { timeout: waitMs + this.timeoutMs, signal }));
    return res.status === 204 ? undefined : res.data;
  }

  async renew(id: number, leaseToken: string): Promise<{ leaseExpiresAt: string; leaseMs: number }> {
    return (await call(this.http.post(`/tasks/${id}/renew`, { leaseToken }, { timeout: this.timeoutMs }))).data;
  }

  async complete(id: number, leaseToken: string, resultBytes?: number): Promise<TaskView> {
    return (await call(this.http.post<TaskView>(`/tasks/${id}/complete`, { leaseToken, resultBytes }, { timeout: this.timeoutMs }))).data;
  }

  async fail(id: number, leaseToken: string, error: string, retryable: boolean): Promise<TaskView> {
    return (await call(this.http.post<TaskView>(`/tasks/${id}/fail`, { leaseToken, error, retryable }, { timeout: this.timeoutMs }))).data;
  }

  async release(id: number, leaseToken: string): Promise<TaskView> {
    return (await call(this.http.post<TaskView>(`/tasks/${id}/release`, { leaseToken }, { timeout: this.timeoutMs }))).data;
  }

  /** Gives back every task still leased to these worker ids (a claim granted whose answer was never read); which ones. */
  async releaseHeldBy(workerIds: string[], timeoutMs = this.timeoutMs): Promise<number[]> {
    return (await call(this.http.post<{ released: number[] }>('/tasks/release', { workerIds }, { timeout: timeoutMs }))).data.released;
  }
}
