import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TopicFilter, patternProblem, topicMatches, topicProblem } from './topics.ts';

test('topics are dot-separated words; patterns add "*" for one word and a final ">" for the rest', () => {
  for (const ok of ['task', 'task.done', 'instance.down', 'a-b_c.D9']) assert.equal(topicProblem(ok), undefined, ok);
  for (const bad of ['', 'a b', 'a..b', '.a', 'a.', 'a.*', 'a.>', 'ü', 'a\nb', 'x'.repeat(201), 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q']) {
    assert.ok(topicProblem(bad), JSON.stringify(bad));
  }
  for (const ok of ['task.*', '*.down', '>', 'audit.>', '*.*']) assert.equal(patternProblem(ok), undefined, ok);
  for (const bad of ['a.>.b', '>x', 'a.**', 'a*', '']) assert.ok(patternProblem(bad), JSON.stringify(bad));
});

test('matching follows NATS: "*" is exactly one word, ">" one or more', () => {
  const cases: [string, string, boolean][] = [
    ['task.*', 'task.done', true],
    ['task.*', 'task', false],
    ['task.*', 'task.done.late', false],
    ['task.>', 'task.done.late', true],
    ['task.>', 'task', false],
    ['*.down', 'instance.down', true],
    ['>', 'anything.at.all', true],
    ['task.done', 'task.done', true],
    ['task.done', 'task.don', false],
  ];
  for (const [pattern, topic, expected] of cases) assert.equal(topicMatches(pattern, topic), expected, `${pattern} ~ ${topic}`);
  const filter = new TopicFilter(['instance.down', 'task.*']);
  assert.ok(filter.matches('instance.down'));
  assert.ok(filter.matches('task.created'));
  assert.ok(filter.matches('task.created'), 'a remembered answer');
  assert.ok(!filter.matches('instance.up'));
  assert.ok(filter.sameAs(['task.*', 'instance.down']));
  assert.ok(!filter.sameAs(['task.*']));
});
