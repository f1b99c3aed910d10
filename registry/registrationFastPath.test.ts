import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastRegistration } from './registrationFastPath.ts';
import { registrationSchema } from './protocol.ts';
import { parseBody } from '../shared/validate.ts';

/** What the schema makes of a body (undefined when it refuses it), without the keys whose value is undefined. */
function bySchema(body: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(parseBody(registrationSchema, body, 'invalid_field')));
  } catch {
    return undefined;
  }
}

const base = { serviceName: 'svc', serviceURL: 'http://127.0.0.1:4000', heartbeatURL: 'http://127.0.0.1:4000/heartbeat' };

const cases: unknown[] = [
  base,
  { ...base, serviceUpdateURL: 'http://127.0.0.1:4000/services', requiredServices: ['log', 'grades', 'log'] },
  { ServiceName: 'svc', ServiceURL: 'http://h:1', HeartbeatURL: 'http://h:1/hb', ServiceUpdateURL: '', RequiredServices: null },
  { SERVICENAME: 'a.b_c-d', serviceurl: 'https://example.com/x?y=1', heartbeaturl: 'https://example.com/hb', instanceID: 'abc_DEF-123' },
  { ...base, ttlSeconds: 30 },
  { serviceName: 'svc', serviceURL: 'http://h:1', ttlSeconds: 3600 },
  { serviceName: 'svc', serviceURL: 'http://h:1', ttlSeconds: 3600.5 },
  { serviceName: 'svc', serviceURL: 'http://h:1', ttlSeconds: 0 },
  { serviceName: 'svc', serviceURL: 'http://h:1', ttlSeconds: '30' },
  { serviceName: 'svc', serviceURL: 'http://h:1', requiredServices: ['x'], ttlSeconds: 10 },
  { ...base, requiredServices: ['x'] },
  { ...base, requiredServices: 'x' },
  { ...base, requiredServices: [' x'] },
  { ...base, requiredServices: Array.from({ length: 65 }, (_, i) => `s${i}`) },
  { ...base, requiredServices: Array.from({ length: 64 }, (_, i) => `s${i}`), serviceUpdateURL: 'http://127.0.0.1:4000/u' },
  { ...base, serviceName: ' svc ' },
  { ...base, serviceName: '' },
  { ...base, serviceName: 'x'.repeat(64) },
  { ...base, serviceName: 'x'.repeat(65) },
  { ...base, serviceName: '-x' },
  { ...base, serviceName: 'a b' },
  { ...base, serviceName: 7 },
  { ...base, serviceURL: 'ftp://h/x' },
  { ...base, serviceURL: 'http://' },
  { ...base, serviceURL: 'not a url' },
  { ...base, serviceURL: ' http://h:1 ' },
  { ...base, serviceURL: `http://h/${'p'.repeat(2040)}` },
  { ...base, serviceURL: `http://h/${'p'.repeat(2050)}` },
  { ...base, heartbeatURL: '' },
  { ...base, heartbeatURL: null },
  { ...base, heartbeatURL: '  ' },
  { ...base, heartbeatURL: 'file:///etc/passwd' },
  { ...base, instanceId: '' },
  { ...base, instanceId: null },
  { ...base, instanceId: 'x'.repeat(65) },
  { ...base, instanceId: 'a/b' },
  { ...base, metadata: { a: 'b' } },
  { ...base, serviceName: 'svc', ServiceName: 'other' },
  { ...base, extra: { anything: true }, __proto__: 'x' },
  JSON.parse('{"serviceName":"svc","serviceURL":"http://h:1","heartbeatURL":"http://h:1/hb","__proto__":{"x":1}}'),
  null,
  [],
  [base],
  'svc',
  42,
  {},
];

test('the fast path accepts only what the schema accepts, with the same result; the rest goes to the schema', () => {
  let fast = 0;
  for (const body of cases) {
    const quick = fastRegistration(body);
    if (quick === undefined) continue;
    fast++;
    assert.deepEqual(JSON.parse(JSON.stringify(quick.registration)), bySchema(body), `body ${JSON.stringify(body)}`);
    const { registration, hosts } = quick;
    assert.deepEqual(hosts, {
      serviceURL: new URL(registration.serviceURL).hostname,
      heartbeatURL: registration.heartbeatURL && new URL(registration.heartbeatURL).hostname,
      serviceUpdateURL: registration.serviceUpdateURL && new URL(registration.serviceUpdateURL).hostname,
    });
  }
  assert.ok(fast >= 8, `the usual bodies take the fast path (${fast} did)`);
  assert.ok(fastRegistration(base), 'a plain registration takes it');
});

test('random bodies: the fast path never accepts what the schema refuses, nor decodes anything differently', () => {
  const pick = <T>(values: T[]) => values[Math.floor(Math.random() * values.length)]!;
  const urls = ['http://127.0.0.1:1', 'https://h.example/x', '', null, undefined, ' http://h ', 'ftp://x', 'http://', 5, 'http://[::1]:3/p'];
  const names = ['svc', 'a.b', '', ' x', '-x', 'x'.repeat(64), 'x'.repeat(65), 3, null, undefined];
  const spell = (name: string) => pick([name, name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1)]);
  for (let i = 0; i < 5000; i++) {
    const body: Record<string, unknown> = {};
    const set = (name: string, value: unknown) => {
      if (value !== undefined || Math.random() < 0.1) body[spell(name)] = value;
    };
    set('serviceName', pick(names));
    set('serviceURL', pick(urls));
    set('heartbeatURL', pick(urls));
    set('serviceUpdateURL', pick(urls));
    set('requiredServices', pick([undefined, null, [], ['a', 'a'], [pick(names)], 'a']));
    set('instanceId', pick([undefined, 'id_1', '', 'a b', null]));
    set('ttlSeconds', pick([undefined, undefined, 1, 0, -1, 3600, 3601, '5']));
    const quick = fastRegistration(body);
    if (quick !== undefined) assert.deepEqual(JSON.parse(JSON.stringify(quick.registration)), bySchema(body), `body ${JSON.stringify(body)}`);
  }
});
