import { z } from 'zod';
import { HttpError } from './errors.ts';

/**
 * Renames an object's keys to the schema's spelling, ignoring case, so that Go-style
 * PascalCase bodies (`ServiceName`) and our camelCase ones (`serviceName`) decode alike.
 */
export function canonicalKeys(input: unknown, names: readonly string[]): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const byLower = new Map(names.map((name) => [name.toLowerCase(), name]));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    out[byLower.get(key.toLowerCase()) ?? key] = value;
  }
  return out;
}

/** A readable one-line account of what zod found wrong, naming the field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const where = issue.path.length ? issue.path.join('.') : 'body';
      return `${where}: ${issue.message}`;
    })
    .join('; ');
}

/** Parses input against a schema (matching field names case-insensitively), or throws a 400 naming the field. */
export function parseBody<S extends z.ZodObject>(schema: S, input: unknown, code = 'invalid_body'): z.infer<S> {
  const result = schema.safeParse(canonicalKeys(input, Object.keys(schema.shape)));
  if (!result.success) throw new HttpError(400, code, describeIssues(result.error));
  return result.data;
}

/** Same as parseBody for query strings and route params (no key renaming). */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, code = 'invalid_request'): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new HttpError(400, code, describeIssues(result.error));
  return result.data;
}

/** An http(s) URL, as the registry and services exchange them. */
export const httpUrl = z
  .string()
  .trim()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');
