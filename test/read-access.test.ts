/**
 * The read side with a token (#18): the log viewer and query API, the events panel and its data, and the registry's
 * dashboard refuse without the token (401 JSON for the APIs, the login form for pages), and take a bearer header or
 * the cookie that the login form sets. Without a token nothing changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { ROOT, getJson, startRegistry, waitFor } from './helpers.ts';
import { runCli, STACK_LINE } from './cliRunner.ts';
import { postLog, startLogService, trackedProcesses } from './fixtures/logs.ts';
import { startEventsService } from './events-helpers.ts';

const { procs } = trackedProcesses();
const TOKEN = 'read-side-secret-1';

async function login(url: string, token: string, next = '/', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ token, next }).toString(),
    redirect: 'manual',
    signal: AbortSignal.timeout(10_000),
  });
}

/** The `name=value` part of the read cookie a login answer set. */
function cookieFrom(res: Response): string {
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('switchboard_read='));
  assert.ok(setCookie, `a read cookie is set: ${res.headers.getSetCookie().join(' | ')}`);
  return setCookie.split(';')[0];
}

async function page(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

test('log service with REGISTRY_TOKEN: viewer and query API need the token; bearer and cookie both work; intake is untouched', async () => {
  const log = await startLogService({ REGISTRY_TOKEN: TOKEN });
  procs.push(log);
  assert.equal((await postLog(log.url, JSON.stringify([{ service: 'ra', level: 'info', message: 'read me' }]), 'application/json')).status, 202, 'writes need no read token');

  for (const path of ['/logs', '/logs?service=ra', '/logs/stream', '/logs/stats']) {
    const refused = await getJson(`${log.url}${path}`);
    assert.equal(refused.status, 401, path);
    assert.equal(refused.body.error.code, 'unauthorized');
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
  }
  assert.equal((await getJson(`${log.url}/logs`, { headers: { authorization: 'Bearer wrong' } })).status, 401);

  const loginForm = await page(`${log.url}/?service=ra`);
  assert.equal(loginForm.status, 401);
  assert.match(loginForm.text, /<form id="login" method="post" action="\/login">/);
  assert.match(loginForm.text, /name="token"/);
  assert.match(loginForm.text, /value="\/\?service=ra"/, 'after login it goes back to the page asked for');
  assert.doesNotMatch(loginForm.text, /read me/);
  assert.match(loginForm.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);

  const withBearer = await getJson(`${log.url}/logs?service=ra`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(withBearer.status, 200);
  assert.equal(withBearer.body.entries[0].message, 'read me');

  const wrong = await login(log.url, 'not-it');
  assert.equal(wrong.status, 401);
  assert.match(await wrong.text(), /not the token/);
  assert.equal(wrong.headers.getSetCookie().length, 0);
  // Refusals answered with the form leave their warn line like any other 4xx.
  await waitFor(() => /POST \/login refused 401 wrong_token/.test(log.output()) && /GET \/ refused 401 login_required/.test(log.output()), 'the refusals logged');

  const crossSite = await login(log.url, TOKEN, '/', { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
  assert.equal(crossSite.status, 403, 'a login posted from another site is refused');
  assert.equal(crossSite.headers.getSetCookie().length, 0);

  const ok = await login(log.url, TOKEN, '/?service=ra');
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get('location'), '/?service=ra');
  const setCookie = ok.headers.getSetCookie().join('; ');
  assert.match(setCookie, /HttpOnly/i);
  assert.match(setCookie, /SameSite=Strict/i);
  assert.match(setCookie, /Path=\//);
  assert.ok(!setCookie.includes(TOKEN), 'the cookie does not hold the token');
  const cookie = cookieFrom(ok);

  const viewer = await page(`${log.url}/`, { cookie });
  assert.equal(viewer.status, 200);
  assert.match(viewer.text, /Switchboard logs/);
  const withCookie = await getJson(`${log.url}/logs?service=ra`, { headers: { cookie } });
  assert.equal(withCookie.status, 200);
  assert.equal(withCookie.body.entries.length, 1);
  const stream = await fetch(`${log.url}/logs/stream`, { headers: { cookie }, signal: AbortSignal.timeout(10_000) });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
  await stream.body?.cancel();
  assert.equal((await getJson(`${log.url}/logs`, { headers: { cookie: 'switchboard_read=forged' } })).status, 401);

  // Only a path on this service is a place to go after logging in.
  for (const next of ['//evil.example/', 'http://evil.example/', '/\\evil.example']) {
    assert.equal((await login(log.url, TOKEN, next)).headers.get('location'), '/', next);
  }
  const logout = await fetch(`${log.url}/logout`, { method: 'POST', redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  assert.equal(logout.status, 303);
  assert.match(logout.headers.getSetCookie().join(';'), /switchboard_read=;/);
});

test('ADMIN_TOKEN wins for people: the login takes it and not REGISTRY_TOKEN; either works as a bearer', async () => {
  const log = await startLogService({ REGISTRY_TOKEN: TOKEN, ADMIN_TOKEN: 'admin-secret-2' });
  procs.push(log);
  assert.equal((await login(log.url, TOKEN)).status, 401);
  const ok = await login(log.url, 'admin-secret-2');
  assert.equal(ok.status, 303);
  assert.equal((await getJson(`${log.url}/logs`, { headers: { cookie: cookieFrom(ok) } })).status, 200);
  for (const token of [TOKEN, 'admin-secret-2']) {
    assert.equal((await getJson(`${log.url}/logs`, { headers: { authorization: `Bearer ${token}` } })).status, 200, token);
  }
  assert.equal((await getJson(`${log.url}/logs`)).status, 401);
});

test('without a token nothing is asked: the viewer, the query API and the tail answer as before', async () => {
  const log = await startLogService();
  procs.push(log);
  assert.equal((await getJson(`${log.url}/logs`)).status, 200);
  const viewer = await page(`${log.url}/`);
  assert.equal(viewer.status, 200);
  assert.match(viewer.text, /Switchboard logs/);
  assert.equal((await getJson(`${log.url}/login`)).status, 404, 'no login route either');
});

test('the registry dashboard and the events panel with its data ask for the token; the registry catalog stays the services\' protocol', async () => {
  const registry = await startRegistry({ REGISTRY_TOKEN: TOKEN });
  procs.push(registry);
  const dashboard = await page(`${registry.url}/`);
  assert.equal(dashboard.status, 401);
  assert.match(dashboard.text, /action="\/login"/);
  assert.equal((await page(`${registry.url}/`, { authorization: `Bearer ${TOKEN}` })).status, 200);
  const ok = await login(registry.url, TOKEN);
  assert.equal(ok.status, 303, 'POST /login is not held up by the registry\'s write-token check');
  const shown = await page(`${registry.url}/`, { cookie: cookieFrom(ok) });
  assert.equal(shown.status, 200);
  assert.doesNotMatch(shown.text, /id="login"/);
  assert.equal((await getJson(`${registry.url}/services`)).status, 200, 'services (and reference Go ones) read the catalog as before');
  // The dashboard's chart data is the dashboard's: it asks too.
  assert.equal((await getJson(`${registry.url}/timeline`)).status, 401);
  assert.equal((await getJson(`${registry.url}/timeline`, { headers: { cookie: cookieFrom(ok) } })).status, 200);

  const events = await startEventsService(registry.url, { REGISTRY_TOKEN: TOKEN });
  procs.push(events);
  for (const path of ['/topics', '/subscribers', '/events/stream']) {
    const refused = await getJson(`${events.url}${path}`);
    assert.equal(refused.status, 401, path);
    assert.equal(refused.body.error.code, 'unauthorized');
    assert.equal((await getJson(`${events.url}${path === '/events/stream' ? '/topics' : path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  }
  assert.equal((await page(`${events.url}/`)).status, 401);
  const eventsLogin = await login(events.url, TOKEN);
  const panel = await page(`${events.url}/`, { cookie: cookieFrom(eventsLogin) });
  assert.equal(panel.status, 200);
  assert.equal((await getJson(`${events.url}/topics`, { headers: { cookie: cookieFrom(eventsLogin) } })).status, 200);
});

test('the CLI sends its --token (REGISTRY_TOKEN) on reads too: logs query and logs tail work with it, and say 401 without', async () => {
  const registry = await startRegistry({ REGISTRY_TOKEN: TOKEN });
  procs.push(registry);
  const log = await startLogService({ REGISTRY_URL: registry.url, REGISTRY_TOKEN: TOKEN });
  procs.push(log);
  assert.equal((await postLog(log.url, JSON.stringify([{ service: 'ra-cli', level: 'info', message: 'cli marker-1' }]), 'application/json')).status, 202);
  const env = { REGISTRY_URL: registry.url, REGISTRY_TOKEN: TOKEN };
  const query = await waitFor(async () => {
    const result = await runCli(['--json', 'logs', 'query', '-q', 'cli marker-1'], env);
    return result.code === 0 ? result : undefined;
  }, 'the CLI to find the log service and read with the token', 30_000, 200);
  assert.equal(JSON.parse(query!.stdout).entries[0].message, 'cli marker-1');

  const refused = await runCli(['logs', 'query'], { REGISTRY_URL: registry.url, REGISTRY_TOKEN: '' });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error: .*\b401\b/m);
  assert.doesNotMatch(refused.stderr, STACK_LINE);

  const tail = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), 'logs', 'tail', '-q', 'cli marker-2'], { cwd: ROOT, env: { ...process.env, ...env } });
  let tailed = '';
  tail.stdout.on('data', (chunk: Buffer) => (tailed += chunk.toString()));
  tail.stderr.on('data', (chunk: Buffer) => (tailed += chunk.toString()));
  try {
    // The tail is open once a line posted now reaches it: post until one does.
    await waitFor(async () => {
      await postLog(log.url, JSON.stringify([{ service: 'ra-cli', level: 'info', message: 'cli marker-2' }]), 'application/json');
      return tailed.includes('cli marker-2');
    }, 'the tail to print the line', 30_000, 500);
  } finally {
    tail.kill('SIGINT');
    await once(tail, 'exit');
  }
  // A CLI failure is one `error: …` line on stderr (a timestamp's milliseconds may read 401).
  assert.doesNotMatch(tailed, /^error: /m);
});
