import { timingSafeEqual } from 'node:crypto';
import type { AxiosInstance } from 'axios';

/** Whether an Authorization header carries `Bearer <token>` (compared in constant time). */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The Authorization an axios instance sends by default, for a stream read with fetch beside it (readEventStream). */
export function authorizationOf(http: AxiosInstance): Record<string, string> {
  const value: unknown = http.defaults.headers.Authorization ?? http.defaults.headers.common?.Authorization;
  return typeof value === 'string' ? { authorization: value } : {};
}
