import type { AxiosInstance } from 'axios';
import { z } from 'zod';
import { describeIssues } from '../shared/validate.ts';
import { ApiError, classifyUpstream } from '../shared/apiError.ts';
import { gradeSchema, studentListSchema, studentSchema, type Grade, type NewGrade, type Student } from './protocol.ts';

/** The grades service answered with an error (its status, code and message). */
export class GradesApiError extends ApiError {
  override readonly name = 'GradesApiError';
}

/**
 * The typed client of the grades API. It takes an axios instance: `svc.client('grades')` in a
 * service (discovery, round-robin, failover), or `axios.create({ baseURL })` in a tool.
 * Errors the service answers become GradesApiError; connection errors and NoProviderError pass
 * through unchanged, so the caller can tell "grades said no" from "grades is not there".
 */
export class GradesClient {
  constructor(private readonly http: AxiosInstance) {}

  async listStudents(): Promise<Student[]> {
    return this.call(() => this.http.get('/students'), studentListSchema);
  }

  async getStudent(id: number): Promise<Student> {
    return this.call(() => this.http.get(`/students/${encodeURIComponent(String(id))}`), studentSchema);
  }

  async addGrade(studentId: number, grade: NewGrade): Promise<Grade> {
    return this.call(() => this.http.post(`/students/${encodeURIComponent(String(studentId))}/grades`, grade), gradeSchema);
  }

  private async call<S extends z.ZodType>(request: () => Promise<{ data: unknown }>, schema: S): Promise<z.infer<S>> {
    let data: unknown;
    try {
      ({ data } = await request());
    } catch (err) {
      const failure = classifyUpstream(err);
      throw failure?.kind === 'answered' ? GradesApiError.answered(failure, 'grades') : err;
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) throw new GradesApiError(502, 'bad_response', `grades answered something unexpected: ${describeIssues(parsed.error)}`);
    return parsed.data;
  }
}
