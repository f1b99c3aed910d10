import { test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { crossSiteRefusal } from './crossSite.ts';

const request = (method: string, headers: Record<string, string>) => ({ method, headers: { host: 'portal.test:5000', ...headers } }) as unknown as http.IncomingMessage;
const refused = (method: string, headers: Record<string, string>) => crossSiteRefusal(request(method, headers)) !== undefined;

test('programs (no Origin, no Sec-Fetch-Site) and safe methods always pass', () => {
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) assert.equal(refused(method, {}), false, method);
  for (const method of ['GET', 'HEAD', 'OPTIONS']) {
    assert.equal(refused(method, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }), false, method);
  }
});

test('with Sec-Fetch-Site: same-origin and none pass; same-site and cross-site pass only when Origin is this host', () => {
  assert.equal(refused('POST', { 'sec-fetch-site': 'same-origin', origin: 'null' }), false);
  assert.equal(refused('POST', { 'sec-fetch-site': 'none' }), false);
  assert.equal(refused('POST', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }), true);
  assert.equal(refused('POST', { 'sec-fetch-site': 'cross-site', origin: 'null' }), true);
  assert.equal(refused('POST', { 'sec-fetch-site': 'cross-site' }), true);
  assert.equal(refused('POST', { 'sec-fetch-site': 'same-site', origin: 'http://portal.test:6000' }), true);
  assert.equal(refused('POST', { 'sec-fetch-site': 'same-site', origin: 'http://portal.test:5000' }), false);
  assert.equal(refused('POST', { 'sec-fetch-site': 'something-new', origin: 'http://elsewhere.test' }), true);
});

test('without Sec-Fetch-Site, Origin must be this host; "null" and unparsable origins are refused', () => {
  assert.equal(refused('POST', { origin: 'http://portal.test:5000' }), false);
  assert.equal(refused('POST', { origin: 'http://PORTAL.test:5000' }), false);
  assert.equal(refused('DELETE', { origin: 'http://portal.test:5001' }), true);
  assert.equal(refused('POST', { origin: 'null' }), true);
  assert.equal(refused('POST', { origin: 'not a url' }), true);
  const answer = crossSiteRefusal(request('PUT', { origin: 'https://evil.example' }));
  assert.equal(answer?.status, 403);
  assert.equal(answer?.code, 'cross_site');
  assert.match(answer?.message ?? '', /Origin: https:\/\/evil\.example/);
});
