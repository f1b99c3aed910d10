/**
 * The client of the master's jobs (jobRoutes.ts): create, list, show, pause, resume, cancel, and uploads into a
 * job with an idempotency key. Results come through MasterClient.result, as for any task.
 */
import type { AxiosInstance, AxiosResponse } from 'axios';
import { classifyUpstream } from '../../shared/apiError.ts';
import type { Op } from '../ops.ts';
import type { TaskView } from '../protocol.ts';
import { IDEMPOTENCY_HEADER, type JobTaskView, type JobView } from '../jobProtocol.ts';
import { MasterError } from './client.ts';

async function call<T>(request: Promise<AxiosResponse<T>>): Promise<AxiosResponse<T>> {
  try {
    return await request;
  } catch (err) {
    const failure = classifyUpstream(err);
    throw failure?.kind === 'answered' ? MasterError.answered(failure, 'the master') : err;
  }
}

export class JobClient {
  constructor(
    private readonly http: AxiosInstance,
    private readonly timeoutMs = 30_000,
  ) {}

  async create(name: string, op: Op): Promise<JobView> {
    return (await call(this.http.post<JobView>('/jobs', { name, op }, { timeout: this.timeoutMs }))).data;
  }

  async get(id: number): Promise<JobView> {
    return (await call(this.http.get<JobView>(`/jobs/${id}`, { timeout: this.timeoutMs }))).data;
  }

  async list(limit = 100): Promise<JobView[]> {
    return (await call(this.http.get<{ jobs: JobView[] }>('/jobs', { params: { limit }, timeout: this.timeoutMs }))).data.jobs;
  }

  /** Every task of the job, page by page. */
  async tasks(id: number): Promise<JobTaskView[]> {
    const all: JobTaskView[] = [];
    for (let after = 0; ; ) {
      const page = (await call(this.http.get<{ tasks: JobTaskView[]; next: number | null }>(`/jobs/${id}/tasks`, { params: { after, limit: 5000 }, timeout: this.timeoutMs }))).data;
      all.push(...page.tasks);
      if (page.next === null) return all;
      after = page.next;
    }
  }

  async pause(id: number): Promise<JobView> {
    return (await call(this.http.post<JobView>(`/jobs/${id}/pause`, {}, { timeout: this.timeoutMs }))).data;
  }

  async resume(id: number): Promise<JobView> {
    return (await call(this.http.post<JobView>(`/jobs/${id}/resume`, {}, { timeout: this.timeoutMs }))).data;
  }

  async cancel(id: number): Promise<JobView & { cancelledTasks: number }> {
    return (await call(this.http.delete<JobView & { cancelledTasks: number }>(`/jobs/${id}`, { timeout: this.timeoutMs }))).data;
  }

  /** Uploads a PNG into a job; `created` is false when the job already had a task for this key (nothing new made). */
  async upload(png: Buffer, job: number, key: string, onUploadProgress?: (bytes: number) => void): Promise<{ task: TaskView; created: boolean }> {
    const res = await call(
      this.http.post<TaskView>('/tasks', png, {
        params: { job },
        headers: { 'content-type': 'image/png', [IDEMPOTENCY_HEADER]: key },
        onUploadProgress: onUploadProgress && ((e) => onUploadProgress(e.loaded)),
        timeout: Math.max(this.timeoutMs, 60_000),
        maxBodyLength: Infinity,
      }),
    );
    return { task: res.data, created: res.status === 201 };
  }
}
