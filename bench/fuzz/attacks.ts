/**
 * The attacks, one function per kind. Each sends its requests over raw sockets and records in
 * `findings` every answer that is not a clear refusal.
 */
import { rawExchange, requestHead, zeros, chunked, type RawAnswer } from './raw.ts';
import { Random, breakJson, wrongType } from './random.ts';
import { Findings, refusalProblem } from './checks.ts';
import { NUMERIC_JUNK, TRAVERSAL_IDS, type Target } from './targets.ts';

const MiB = 2 ** 20;
export const HUGE_BYTES = 100 * MiB;

function hostOf(url: string): string {
  return new URL(url).host;
}

function send(target: Target, method: string, path: string, headers: string[], body?: string | Buffer, timeoutMs = 15_000): Promise<RawAnswer> {
  const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const lines = bytes ? [...headers, `Content-Length: ${bytes.length}`] : headers;
  return rawExchange(target.url, { head: requestHead(method, path, hostOf(target.url), lines), body: bytes ? [bytes] : undefined, timeoutMs });
}

function expectRefusal(findings: Findings, target: Target, category: string, what: string, answer: RawAnswer, htmlAllowed = false): void {
  findings.count(category);
  const problem = refusalProblem(answer, htmlAllowed);
  if (problem) findings.add(target.name, category, what, problem);
}

/** Malformed JSON and wrong types on every JSON route, chosen by the seeded generator. */
export async function mutateJson(findings: Findings, target: Target, random: Random): Promise<void> {
  const route = random.pick(target.jsonRoutes);
  const type = route.type ?? 'application/json';
  let body: string;
  let what: string;
  if (random.chance(0.5)) {
    body = breakJson(random, JSON.stringify(route.body));
    what = `malformed JSON ${JSON.stringify(body.slice(0, 60))}`;
    findings.count('malformed JSON');
  } else {
    const copy = structuredClone(route.body) as Record<string, unknown>;
    const mutated = random.chance(0.15) ? wrongType(random, copy) : mutateField(random, copy);
    body = JSON.stringify(mutated);
    what = `wrong type ${body.slice(0, 100)}`;
    findings.count('wrong types');
  }
  const answer = await send(target, route.method, route.path, [`Content-Type: ${type}`], body);
  if (stillJson(body)) {
    // The "break" left valid JSON (a changed value, a renamed key): it may be a valid request; it must not be a 5xx.
    findings.count('json');
    if (answer.status === 0 || answer.status >= 500) findings.add(target.name, 'json', `${route.method} ${route.path}: ${what}`, `status ${answer.status} (${answer.ending}): ${answer.body.slice(0, 160)}`);
    return;
  }
  expectRefusal(findings, target, 'json', `${route.method} ${route.path}: ${what}`, answer);
}

function stillJson(text: string): boolean {
  try {
    // body-parser drops a leading byte order mark, as RFC 8259 allows.
    JSON.parse(text.replace(/^\ufeff/, ''));
    return true;
  } catch {
    return false;
  }
}

/** Replaces one field (perhaps nested) with a value of another type. */
function mutateField(random: Random, body: Record<string, unknown>): unknown {
  const keys = Object.keys(body);
  const key = random.pick(keys);
  const value = body[key];
  if (Array.isArray(value) && value.length > 0 && typeof value[0] === 'object' && random.chance(0.5)) {
    const inner = { ...(value[0] as Record<string, unknown>) };
    const innerKey = random.pick(Object.keys(inner));
    inner[innerKey] = wrongType(random, inner[innerKey]);
    body[key] = [inner];
  } else {
    body[key] = wrongType(random, value);
  }
  return body;
}

/** The outcome of one huge body, for the summary. */
export interface HugeResult {
  service: string;
  what: string;
  status: number;
  sentMiB: number;
  ms: number;
}

/** 100 MiB with a declared Content-Length, and chunked without one: refused early, not read in full. */
export async function hugeBodies(findings: Findings, target: Target, results: HugeResult[]): Promise<void> {
  for (const route of target.bodyRoutes) {
    for (const framing of ['content-length', 'chunked'] as const) {
      const headers = [`Content-Type: ${route.type}`, framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${HUGE_BYTES}`];
      const answer = await rawExchange(target.url, {
        head: requestHead(route.method, route.path, hostOf(target.url), headers),
        body: framing === 'chunked' ? chunked(HUGE_BYTES) : zeros(HUGE_BYTES),
        writeAfterAnswer: true,
        timeoutMs: 60_000,
      });
      const what = `${route.method} ${route.path} (${route.type}), 100 MiB, ${framing}`;
      expectRefusal(findings, target, 'huge bodies', what, answer, target.htmlPages);
      results.push({ service: target.name, what, status: answer.status, sentMiB: answer.sent / MiB, ms: answer.ms });
      // The server must stop taking the body: the socket buffers hold a few MiB, never all 100.
      if (answer.sent >= HUGE_BYTES) findings.add(target.name, 'huge bodies', what, 'the server read the whole 100 MiB body');
    }
  }
}

/** Ids that try to leave a data directory or confuse a parser, encoded and not. */
export async function traversalIds(findings: Findings, target: Target, random: Random): Promise<void> {
  for (const route of target.idRoutes) {
    for (const id of route.numeric ? [...TRAVERSAL_IDS, ...NUMERIC_JUNK] : TRAVERSAL_IDS) {
      const path = route.path.replace('{id}', id);
      const body = route.method === 'PUT' || route.method === 'POST' ? random.bytes(32) : undefined;
      const answer = await send(target, route.method, path, body ? ['Content-Type: application/octet-stream'] : [], body);
      expectRefusal(findings, target, 'path traversal', `${route.method} ${path.slice(0, 80)}`, answer, target.htmlPages);
    }
    // Not encoded at all: a raw backslash, a raw "..", a NUL and a space in the request target.
    for (const raw of ['..\\..\\secret', '../../secret', 'a\u0000b', 'a b', '%']) {
      const path = route.path.replace('{id}', raw);
      const answer = await rawExchange(target.url, {
        head: Buffer.from(`${route.method} ${path} HTTP/1.1\r\nHost: ${hostOf(target.url)}\r\nContent-Length: 0\r\n\r\n`, 'latin1'),
        timeoutMs: 15_000,
      });
      expectRefusal(findings, target, 'path traversal', `${route.method} ${JSON.stringify(path).slice(0, 80)} (raw)`, answer, target.htmlPages);
    }
  }
}

/** Header abuse: oversized, too many, bad Content-Type and Content-Length, smuggling, bad request ids. */
export async function headerAbuse(findings: Findings, target: Target): Promise<void> {
  const json = target.jsonRoutes[0];
  const body = JSON.stringify(json.body);
  const host = hostOf(target.url);
  const cases: { what: string; head: string; body?: string; skip?: boolean }[] = [
    { what: 'a 64 KiB header', head: requestHead('GET', '/health', host, [`X-Big: ${'a'.repeat(64 * 1024)}`]) },
    { what: '5,000 headers', head: requestHead('GET', '/health', host, Array.from({ length: 5000 }, (_, i) => `X-H${i}: ${i}`)) },
    { what: 'a Content-Type with an unknown charset', head: requestHead(json.method, json.path, host, ['Content-Type: application/json; charset=klingon', `Content-Length: ${Buffer.byteLength(body)}`]), body },
    { what: 'a nonsense Content-Type', head: requestHead(json.method, json.path, host, ['Content-Type: ;;;==', `Content-Length: ${Buffer.byteLength(body)}`]), body },
    {
      what: 'JSON sent as text/plain',
      head: requestHead(json.method, json.path, host, ['Content-Type: text/plain', `Content-Length: ${Buffer.byteLength(body)}`]),
      body,
      skip: json.acceptsText,
    },
    { what: 'a Content-Length that is not a number', head: requestHead(json.method, json.path, host, ['Content-Type: application/json', 'Content-Length: abc']), body },
    { what: 'a negative Content-Length', head: requestHead(json.method, json.path, host, ['Content-Type: application/json', 'Content-Length: -1']), body },
    { what: 'a 20-digit Content-Length', head: requestHead(json.method, json.path, host, ['Content-Type: application/json', 'Content-Length: 99999999999999999999']), body },
    {
      what: 'two different Content-Lengths',
      head: requestHead(json.method, json.path, host, ['Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, `Content-Length: ${Buffer.byteLength(body) + 5}`]),
      body,
    },
    {
      what: 'Content-Length and Transfer-Encoding (smuggling)',
      head: requestHead(json.method, json.path, host, ['Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, 'Transfer-Encoding: chunked']),
      body,
    },
    { what: 'an unknown Transfer-Encoding', head: requestHead(json.method, json.path, host, ['Content-Type: application/json', 'Transfer-Encoding: rot13']), body },
    { what: 'a gzip body that is not gzip', head: requestHead(json.method, json.path, host, ['Content-Type: application/json', 'Content-Encoding: gzip', `Content-Length: ${Buffer.byteLength(body)}`]), body },
    { what: 'an unknown Content-Encoding', head: requestHead(json.method, json.path, host, ['Content-Type: application/json', 'Content-Encoding: zstd-9000', `Content-Length: ${Buffer.byteLength(body)}`]), body },
    { what: 'an unknown method', head: requestHead('BREW', '/health', host, []) },
    { what: 'not HTTP at all', head: 'HELLO THERE\r\n\r\n' },
    { what: 'a header without a colon', head: `GET /health HTTP/1.1\r\nHost: ${host}\r\nNoColonHere\r\n\r\n` },
  ];
  for (const c of cases.filter((x) => !x.skip)) {
    const answer = await rawExchange(target.url, { head: c.head, body: c.body ? [Buffer.from(c.body)] : undefined, timeoutMs: 15_000 });
    expectRefusal(findings, target, 'header abuse', c.what, answer, target.htmlPages);
  }
  // A bad request id is not a reason to refuse, but it must never be echoed back.
  for (const bad of ['x'.repeat(500), '<script>alert(1)</script>', 'ünïcødé', 'a;b,c', '']) {
    const answer = await rawExchange(target.url, { head: requestHead('GET', '/health', host, [`X-Request-Id: ${bad}`]), timeoutMs: 15_000 });
    findings.count('header abuse');
    const echoed = answer.headers['x-request-id'] ?? '';
    if (answer.status !== 200) findings.add(target.name, 'header abuse', `bad x-request-id ${JSON.stringify(bad.slice(0, 30))}`, `GET /health answered ${answer.status}`);
    else if (!/^[A-Za-z0-9._:-]{1,128}$/.test(echoed)) findings.add(target.name, 'header abuse', `bad x-request-id ${JSON.stringify(bad.slice(0, 30))}`, `echoed as ${JSON.stringify(echoed.slice(0, 60))}`);
  }
}

/** A connection held open by a slow client, and how long the server let it live. */
export interface SlowResult {
  service: string;
  kind: 'slow headers' | 'slow body';
  /** When the server cut it off, in ms from the start; undefined while it is still open. */
  cutAfterMs?: number;
  status: number;
}

/**
 * Opens `count` connections that send their headers (or their body) a few bytes a second.
 * Resolves when every one was cut off by the server or `giveUpMs` passed.
 */
export async function slowloris(target: Target, kind: SlowResult['kind'], count: number, giveUpMs: number): Promise<SlowResult[]> {
  const json = target.jsonRoutes[0];
  const host = hostOf(target.url);
  const one = async (): Promise<SlowResult> => {
    const started = Date.now();
    const head =
      kind === 'slow headers'
        ? `GET /health HTTP/1.1\r\nHost: ${host}\r\n`
        : requestHead(json.method, json.path, host, ['Content-Type: application/json', 'Content-Length: 1000']);
    async function* trickle(): AsyncGenerator<Buffer> {
      for (let i = 0; Date.now() - started < giveUpMs; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        yield Buffer.from(kind === 'slow headers' ? `X-Slow-${i}: ${i}\r\n` : ' ');
      }
    }
    const answer = await rawExchange(target.url, { head, body: trickle(), timeoutMs: giveUpMs, closeOnAnswer: true });
    const cut = answer.ending !== 'timeout';
    return { service: target.name, kind, cutAfterMs: cut ? Date.now() - started : undefined, status: answer.status };
  };
  return Promise.all(Array.from({ length: count }, one));
}
