import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, html, SafeHtml } from './html.ts';

test('escapeHtml escapes the five characters that matter in text and attributes', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

test('html`` escapes every value except SafeHtml, and renders lists and blanks', () => {
  const evil = '"><script>alert(1)</script>';
  const out = html`<input value="${evil}">${[html`<b>${'<i>'}</b>`, '<u>']}${undefined}${null}${false}${0}`;
  assert.ok(out instanceof SafeHtml);
  assert.equal(out.value, '<input value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"><b>&lt;i&gt;</b>&lt;u&gt;0');
});
