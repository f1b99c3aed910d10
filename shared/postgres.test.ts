import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnavailable, redactUrl } from './postgres.ts';

/** An error as node-postgres or the socket gives it: a message and, maybe, a code. */
const failure = (message: string, code?: string) => Object.assign(new Error(message), code === undefined ? {} : { code });

test('the database being away is unavailable: shutdown, start-up, connection classes, resources, timeouts', () => {
  for (const code of ['57P01', '57P02', '57P03', '57P05', '57014', '57000', '08000', '08003', '08006', '08001', '08P01', '53300', '53100', '53200', '58000', '58030', '40001', '40P01', '55P03']) {
    assert.equal(isUnavailable(failure('from the server', code)), true, code);
  }
});

test('socket errors are unavailable, five-letter ones (EPIPE) included', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT']) {
    assert.equal(isUnavailable(failure(`connect ${code} 127.0.0.1:5432`, code)), true, code);
  }
});

test("the driver's own words for a lost or slow connection are unavailable", () => {
  for (const message of [
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'timeout exceeded when trying to connect',
    'Query read timeout',
    'Client has encountered a connection error and is not queryable',
    'Client was closed and is not queryable',
  ]) {
    assert.equal(isUnavailable(failure(message)), true, message);
  }
});

test('a connection to a name with several addresses, all refused, is unavailable', () => {
  const refused = (address: string) => failure(`connect ECONNREFUSED ${address}:5432`, 'ECONNREFUSED');
  assert.equal(isUnavailable(new AggregateError([refused('::1'), refused('127.0.0.1')])), true);
  assert.equal(isUnavailable(new AggregateError([failure('something else')])), false);
});

test("the statement's or the setup's own fault is not unavailable", () => {
  for (const code of ['23505', '23503', '42P01', '42601', '22P02', '28P01', '3D000', '57P04', '58P01', '42501']) {
    assert.equal(isUnavailable(failure('from the server', code)), false, code);
  }
  assert.equal(isUnavailable(failure('connect EACCES /var/run/postgresql/.s.PGSQL.5432', 'EACCES')), false);
  assert.equal(isUnavailable(failure('Cannot use a pool after calling end on the pool')), false);
  assert.equal(isUnavailable(new TypeError('x is not a function')), false);
  assert.equal(isUnavailable(undefined), false);
  assert.equal(isUnavailable('Connection terminated'), false);
});

test('a SQLSTATE decides by itself, whatever its message says', () => {
  assert.equal(isUnavailable(failure('duplicate key: "connection error" in the title', '23505')), false);
});

test('redaction hides the password and keeps the rest of the URL', () => {
  assert.equal(redactUrl('postgres://grades:s3cret@db:5432/school'), 'postgres://grades:***@db:5432/school');
  assert.equal(redactUrl('postgresql://grades:s3cret@db/school?sslmode=require'), 'postgresql://grades:***@db/school?sslmode=require');
  assert.equal(redactUrl('postgres://postgres@127.0.0.1:5432/postgres'), 'postgres://postgres@127.0.0.1:5432/postgres');
});

test('redaction hides a password with an @ in it, and one given as a parameter', () => {
  const hidden = redactUrl('postgres://grades:pa@ss@db/school');
  assert.equal(hidden, 'postgres://grades:***@db/school');
  const param = redactUrl('postgres://grades@db/school?password=s3cret&sslmode=require');
  assert.doesNotMatch(param, /s3cret/);
  assert.match(param, /sslmode=require/);
});

test('a connection string that is not a URL is not repeated at all', () => {
  const hidden = redactUrl('host=db user=grades password=s3cret');
  assert.doesNotMatch(hidden, /s3cret/);
  assert.equal(hidden, 'DATABASE_URL (not a URL)');
});
