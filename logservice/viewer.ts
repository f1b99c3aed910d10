/**
 * The log viewer (GET /): filters, a live tail that can be paused, level colours, and a click on
 * a request id to see that request's lines from every service. Plain DOM, no build step.
 * `nonce` is the response's CSP nonce (shared/pageHeaders.ts), which the inline script and style carry.
 */
import { ENTRY_FIELDS } from './protocol.ts';

export function viewerPage(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard logs</title>
<style nonce="${nonce}">
  :root { font-family: system-ui, sans-serif; color: #1d232a; background: #f6f7f9; }
  body { margin: 0 auto; max-width: 1400px; padding: 1.2rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .6rem; }
  form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: .6rem; }
  label { display: flex; flex-direction: column; font-size: .75rem; color: #5b6570; gap: .15rem; }
  input, select, button { font: inherit; font-size: .9rem; padding: .3rem .45rem; border: 1px solid #c8cdd3; border-radius: .3rem; background: #fff; }
  button { cursor: pointer; background: #eef0f3; }
  button.primary { background: #1f5fbf; color: #fff; border-color: #1f5fbf; }
  .bar { display: flex; gap: .8rem; align-items: center; margin-bottom: .6rem; font-size: .85rem; color: #5b6570; }
  #status { padding: .1rem .5rem; border-radius: 1rem; background: #ddd; }
  #status.live { background: #c9f1d4; color: #145a2a; }
  #status.paused { background: #fde9b8; color: #6b4a00; }
  #status.lost { background: #f8d0d0; color: #7a1414; }
  #trace { display: none; padding: .35rem .6rem; background: #e4ecfa; border-radius: .3rem; }
  table { width: 100%; border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); font-family: ui-monospace, monospace; font-size: .8rem; }
  th, td { text-align: left; padding: .25rem .45rem; border-bottom: 1px solid #eceef1; vertical-align: top; }
  th { background: #eef0f3; font-family: system-ui, sans-serif; font-weight: 600; position: sticky; top: 0; }
  td.time { white-space: nowrap; color: #5b6570; }
  td.msg { white-space: pre-wrap; word-break: break-word; }
  .meta { color: #6b7682; }
  .lvl { font-weight: 700; text-transform: uppercase; font-size: .72rem; padding: .05rem .3rem; border-radius: .2rem; }
  .lvl-error { background: #f8d0d0; color: #7a1414; }
  .lvl-warn { background: #fde9b8; color: #6b4a00; }
  .lvl-info { background: #d5e5fb; color: #123f80; }
  .lvl-http { background: #dcf3e4; color: #145a2a; }
  .lvl-verbose, .lvl-debug, .lvl-silly { background: #eceef1; color: #5b6570; }
  tr.error td.msg { color: #7a1414; }
  a.rid { color: #1f5fbf; cursor: pointer; text-decoration: underline dotted; }
  #empty { padding: 2rem; text-align: center; color: #5b6570; }
  input.narrow { width: 5rem; }
</style>
</head>
<body>
<h1>Switchboard logs</h1>
<form id="filters">
  <label>service <input name="service" placeholder="any (a,b)"></label>
  <label>level <select name="level">
    <option value="">any</option><option>error</option><option>warn</option><option>info</option>
    <option>http</option><option>verbose</option><option>debug</option>
  </select></label>
  <label>request id <input name="requestId" size="36"></label>
  <label>text <input name="q" placeholder="in message or metadata"></label>
  <label>since <input name="since" placeholder="15m, 2h, ISO date"></label>
  <label>until <input name="until" placeholder="ISO date"></label>
  <label>limit <input name="limit" type="number" min="1" max="5000" value="200" class="narrow"></label>
  <button class="primary" type="submit">Search</button>
  <button type="button" id="clear">Clear</button>
</form>
<div class="bar">
  <span id="status">connecting…</span>
  <button type="button" id="pause">Pause</button>
  <span id="count"></span>
  <span id="trace"></span>
</div>
<table>
  <thead><tr><th>time</th><th>level</th><th>service</th><th>request</th><th>message</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div id="empty" hidden>No lines match.</div>
<script nonce="${nonce}">
const MAX_ROWS = 2000;
const form = document.getElementById('filters');
const rows = document.getElementById('rows');
const statusEl = document.getElementById('status');
const countEl = document.getElementById('count');
const pauseButton = document.getElementById('pause');
const traceEl = document.getElementById('trace');
const emptyEl = document.getElementById('empty');
const OWN = new Set(${JSON.stringify(ENTRY_FIELDS)});
let source = null;
let paused = false;
let held = [];
let shown = new Set();

function params() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (String(v).trim() !== '') p.set(k, String(v).trim());
  return p;
}
function setStatus(text, cls) { statusEl.textContent = text; statusEl.className = cls || ''; }
function cell(cls, content) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  if (content instanceof Node) td.append(content); else td.textContent = content == null ? '' : String(content);
  return td;
}
function row(entry) {
  const tr = document.createElement('tr');
  tr.className = entry.level;
  const level = document.createElement('span');
  level.className = 'lvl lvl-' + entry.level;
  level.textContent = entry.level;
  let rid = '';
  if (entry.requestId) {
    rid = document.createElement('a');
    rid.className = 'rid';
    rid.title = 'every line of this request, from every service';
    rid.textContent = String(entry.requestId).slice(0, 8);
    rid.addEventListener('click', () => traceRequest(entry.requestId));
  }
  const msg = document.createElement('span');
  msg.textContent = entry.message;
  const extra = Object.fromEntries(Object.entries(entry).filter(([k]) => !OWN.has(k)));
  const td = cell('msg', msg);
  if (Object.keys(extra).length) {
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = ' ' + JSON.stringify(extra);
    td.append(meta);
  }
  tr.append(cell('time', entry.time), cell('', level), cell('', entry.service), cell('', rid), td);
  return tr;
}
function addNewest(entries) {
  const fragment = document.createDocumentFragment();
  for (const entry of entries) {
    if (entry.seq !== undefined) {
      if (shown.has(entry.seq)) continue;
      shown.add(entry.seq);
    }
    fragment.prepend(row(entry));
  }
  rows.prepend(fragment);
  while (rows.children.length > MAX_ROWS) rows.lastElementChild.remove();
  emptyEl.hidden = rows.children.length > 0;
  countEl.textContent = rows.children.length + ' lines shown' + (held.length ? ', ' + held.length + ' waiting' : '');
}
async function search() {
  const p = params();
  rows.replaceChildren();
  shown = new Set();
  held = [];
  setStatus('loading…');
  try {
    const res = await fetch('logs?' + p);
    const body = await res.json();
    if (!res.ok) { setStatus(body.error ? body.error.message : 'error ' + res.status, 'lost'); return; }
    addNewest(body.entries.slice().reverse());
    if (body.truncated) countEl.textContent += ' (older files not fully searched)';
  } catch (err) {
    setStatus('cannot reach the log service', 'lost');
    return;
  }
  follow(p);
}
function follow(p) {
  if (source) source.close();
  p.delete('limit');
  source = new EventSource('logs/stream?' + p);
  source.onopen = () => setStatus(paused ? 'paused' : 'live', paused ? 'paused' : 'live');
  source.onerror = () => setStatus('reconnecting…', 'lost');
  source.onmessage = (event) => {
    const entry = JSON.parse(event.data);
    if (paused) {
      if (held.length < 10000) held.push(entry);
      countEl.textContent = rows.children.length + ' lines shown, ' + held.length + ' waiting';
    } else addNewest([entry]);
  };
  source.addEventListener('dropped', (event) => {
    countEl.textContent += ' (' + JSON.parse(event.data).dropped + ' live lines skipped: too fast to show)';
  });
}
function traceRequest(requestId) {
  form.reset();
  form.elements.requestId.value = requestId;
  form.elements.limit.value = 5000;
  traceEl.style.display = 'inline';
  traceEl.textContent = 'request ' + requestId + ': every service';
  search();
}
pauseButton.addEventListener('click', () => {
  paused = !paused;
  pauseButton.textContent = paused ? 'Resume' : 'Pause';
  setStatus(paused ? 'paused' : 'live', paused ? 'paused' : 'live');
  if (!paused) { const waiting = held; held = []; addNewest(waiting); }
});
form.addEventListener('submit', (event) => {
  event.preventDefault();
  traceEl.style.display = form.elements.requestId.value ? 'inline' : 'none';
  traceEl.textContent = form.elements.requestId.value ? 'request ' + form.elements.requestId.value : '';
  search();
});
document.getElementById('clear').addEventListener('click', () => { form.reset(); traceEl.style.display = 'none'; search(); });
const initial = new URLSearchParams(location.search);
for (const [k, v] of initial) if (form.elements[k]) form.elements[k].value = v;
search();
</script>
</body>
</html>`;
}
