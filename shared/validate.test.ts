import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { canonicalKeys, parseBody } from './validate.ts';
import { HttpError } from './errors.ts';

test('field names match case-insensitively (Go-style PascalCase)', () => {
  const schema = z.object({ serviceName: z.string(), serviceURL: z.string() });
  assert.deepEqual(parseBody(schema, { ServiceName: 'a', SERVICEURL: 'b' }), { serviceName: 'a', serviceURL: 'b' });
  assert.deepEqual(canonicalKeys({ servicename: 1, other: 2 }, ['serviceName']), { serviceName: 1, other: 2 });
  assert.equal(canonicalKeys('text', ['x']), 'text');
});

test('a bad body is a 400 that names the field', () => {
  const schema = z.object({ serviceName: z.string().min(1, 'must not be empty') });
  assert.throws(
    () => parseBody(schema, { serviceName: '' }, 'invalid_field'),
    (err: unknown) => err instanceof HttpError && err.status === 400 && err.code === 'invalid_field' && /serviceName: must not be empty/.test(err.message),
  );
});
