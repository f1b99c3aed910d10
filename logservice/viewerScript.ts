/**
 * The log viewer's script (logservice/viewer.ts puts it in the page under the CSP nonce). Lines are in
 * time order, the newest last, as GET /logs answers and `logs query` prints; live lines are put in their
 * place by time. The filters live in the URL's query string, so a view can be bookmarked and shared.
 * Plain DOM, no build step: written without template literals, as it sits inside one.
 */
import { LEVEL_ALIASES } from './filters.ts';
import { ENTRY_FIELDS, LEVELS } from './protocol.ts';

export const viewerScript = `
const MAX_ROWS = 2000;
const MAX_BUCKETS = 120;
const FIELDS = ['service', 'level', 'requestId', 'q', 'since', 'until', 'limit'];
const OWN = new Set(${JSON.stringify(ENTRY_FIELDS)});
const LEVELS = ${JSON.stringify(LEVELS)};
const LEVEL_OF = ${JSON.stringify(LEVEL_ALIASES)};
const $ = (id) => document.getElementById(id);
const form = $('filters'), rows = $('rows'), box = $('logbox'), statusEl = $('status'), countEl = $('count');
const pauseButton = $('pause'), traceEl = $('trace'), emptyEl = $('empty'), errorEl = $('error'), noticeEl = $('notice');
const volumeEl = $('volume'), chart = $('chart'), volumeText = $('volume-text');
const SVG = 'http://www.w3.org/2000/svg';
let source = null, paused = false, held = [], shown = new Set(), services = [], volume = null, generation = 0;

function params() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (String(v).trim() !== '') p.set(k, String(v).trim());
  if (p.get('limit') === '200') p.delete('limit');
  return p;
}
function fillForm(p) {
  form.reset();
  for (const k of FIELDS) {
    if (!p.has(k)) continue;
    const field = form.elements[k], value = p.get(k);
    // A level from the URL that isn't offered is still sent, so the log service says what is wrong with it.
    if (field.tagName === 'SELECT' && ![...field.options].some((o) => o.value === value)) field.append(new Option(value, value));
    field.value = value;
  }
  showTrace();
}
function showTrace() {
  const id = form.elements.requestId.value.trim();
  traceEl.hidden = !id;
  traceEl.textContent = id ? 'request ' + id + ': every service' : '';
}
function setStatus(text, cls) { statusEl.textContent = text; statusEl.className = cls || ''; }
function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }
function showCount() {
  const n = rows.children.length;
  countEl.textContent = plural(n, 'line') + ' shown' + (held.length ? ', ' + held.length + ' waiting' : '');
  emptyEl.hidden = n > 0;
}
function showError(message) {
  errorEl.textContent = message;
  errorEl.hidden = false;
  rows.replaceChildren();
  countEl.textContent = '';
  emptyEl.hidden = true;
  volumeEl.hidden = true;
  noticeEl.hidden = true;
  setStatus('error', 'lost');
}
function cell(cls, content) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  if (content instanceof Node) td.append(content); else td.textContent = content == null ? '' : String(content);
  return td;
}
function row(entry) {
  const tr = document.createElement('tr');
  tr.className = entry.level;
  tr.dataset.t = String(Date.parse(entry.time));
  tr.dataset.seq = String(entry.seq == null ? 0 : entry.seq);
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
function later(tr, t, seq) { const rt = Number(tr.dataset.t); return rt > t || (rt === t && Number(tr.dataset.seq) > seq); }
/** Puts lines in their place by time (almost always the end), keeping the newest in view if it was. */
function addLines(entries) {
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  for (const entry of entries) {
    if (entry.seq !== undefined) {
      if (shown.has(entry.seq)) continue;
      shown.add(entry.seq);
    }
    const tr = row(entry);
    const t = Number(tr.dataset.t), seq = Number(tr.dataset.seq);
    let next = null;
    for (let r = rows.lastElementChild; r && later(r, t, seq); r = r.previousElementSibling) next = r;
    rows.insertBefore(tr, next);
  }
  // The oldest rows go, and their seqs with them, so a tab left open holds at most MAX_ROWS of either.
  while (rows.children.length > MAX_ROWS) {
    shown.delete(Number(rows.firstElementChild.dataset.seq));
    rows.firstElementChild.remove();
  }
  showCount();
  if (atBottom) box.scrollTop = box.scrollHeight;
}
function describeBucket(b) {
  const parts = Object.entries(b.levels).map(([l, n]) => l + ' ' + n).join(', ');
  return b.time + ': ' + plural(b.count, 'line') + (parts ? ' (' + parts + ')' : '');
}
function drawVolume() {
  if (!volume) { volumeEl.hidden = true; return; }
  volumeEl.hidden = false;
  const buckets = volume.buckets;
  const most = Math.max(1, ...buckets.map((b) => b.count));
  const width = 1000, height = 60, w = width / buckets.length;
  chart.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  chart.replaceChildren();
  buckets.forEach((b, i) => {
    const g = document.createElementNS(SVG, 'g');
    g.setAttribute('class', 'bucket');
    const title = document.createElementNS(SVG, 'title');
    title.textContent = describeBucket(b) + ' (click to show this bucket)';
    g.append(title);
    const hit = document.createElementNS(SVG, 'rect');
    hit.setAttribute('class', 'hit');
    for (const [k, v] of [['x', i * w], ['y', 0], ['width', w], ['height', height]]) hit.setAttribute(k, String(v));
    g.append(hit);
    let y = height;
    for (const level of LEVELS.slice().reverse()) {
      const n = b.levels[level];
      if (!n) continue;
      const h = (n / most) * (height - 2);
      y -= h;
      const bar = document.createElementNS(SVG, 'rect');
      bar.setAttribute('class', 'v v-' + level);
      for (const [k, v] of [['x', i * w + w * 0.1], ['y', y], ['width', Math.max(1, w * 0.8)], ['height', h]]) bar.setAttribute(k, String(v));
      g.append(bar);
    }
    g.addEventListener('click', () => zoomTo(b.time, volume.stepMs));
    chart.append(g);
  });
  volumeText.textContent = plural(volume.total, 'line') + ' from ' + volume.from + ' to ' + volume.to + ', ' + stepText(volume.stepMs) + ' a bar' + (volume.truncated ? ' (older files not fully read)' : '');
}
function stepText(ms) {
  for (const [unit, size] of [['d', 86400000], ['h', 3600000], ['min', 60000], ['s', 1000]]) if (ms >= size && ms % size === 0) return ms / size + ' ' + unit;
  return ms + ' ms';
}
/** A live line counts in the volume bar too: in its bucket, or in new ones as time moves on. */
function countLive(entry) {
  if (!volume || params().has('until')) return;
  const t = Date.parse(entry.time), start = Date.parse(volume.buckets[0].time), step = volume.stepMs;
  let i = Math.floor((t - start) / step);
  if (i < 0) return;
  while (i >= volume.buckets.length) volume.buckets.push({ time: new Date(start + volume.buckets.length * step).toISOString(), count: 0, levels: {} });
  while (volume.buckets.length > MAX_BUCKETS) { volume.buckets.shift(); i--; }
  if (i < 0) return;
  const b = volume.buckets[i];
  const level = LEVELS.includes(entry.level) ? entry.level : (Object.hasOwn(LEVEL_OF, entry.level) ? LEVEL_OF[entry.level] : 'info');
  b.count++;
  b.levels[level] = (b.levels[level] || 0) + 1;
  volume.total++;
  volume.to = new Date(Math.max(Date.parse(volume.to), t)).toISOString();
  drawVolume();
}
function zoomTo(time, stepMs) {
  form.elements.since.value = time;
  form.elements.until.value = new Date(Date.parse(time) + stepMs - 1).toISOString();
  search(true);
}
function showServices(unknown) {
  $('services').replaceChildren(...services.map((name) => Object.assign(document.createElement('option'), { value: name })));
  if (!unknown || unknown.length === 0) { noticeEl.hidden = true; return; }
  noticeEl.textContent = 'No lines from service ' + unknown.map((n) => '"' + n + '"').join(', ') + '. Services with lines: ' + (services.join(', ') || 'none yet') + '.';
  noticeEl.hidden = false;
}
async function getJson(path) {
  const res = await fetch(path);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.message : 'error ' + res.status);
  return body;
}
/** Runs the filters in the form; push: a new entry in the browser's history (a search the person made). */
async function search(push) {
  const p = params();
  const url = location.pathname + (p.toString() ? '?' + p : '');
  if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
  const mine = ++generation;
  if (source) { source.close(); source = null; }
  rows.replaceChildren();
  shown = new Set();
  held = [];
  errorEl.hidden = true;
  setStatus('loading…');
  let body;
  try {
    const res = await fetch('logs?' + p);
    body = await res.json();
    if (mine !== generation) return;
    if (!res.ok) return showError(body.error ? body.error.message : 'error ' + res.status);
  } catch (err) {
    if (mine === generation) showError('cannot reach the log service');
    return;
  }
  addLines(body.entries);
  box.scrollTop = box.scrollHeight;
  if (body.truncated) countEl.textContent += ' (older files not fully searched)';
  const vp = new URLSearchParams(p);
  vp.delete('limit');
  // Without a since, the bar covers the lines shown when the limit cut them: reading every older file would cost more than the search did.
  const counts = new URLSearchParams(vp);
  if (!vp.has('since') && body.entries.length >= Number(p.get('limit') || 200)) counts.set('since', body.entries[0].time);
  const [labels, counted] = await Promise.all([getJson('logs/labels').catch(() => null), getJson('logs/volume?' + counts).catch(() => null)]);
  if (mine !== generation) return;
  if (labels) services = labels.services;
  showServices(body.unknownServices);
  volume = counted;
  drawVolume();
  follow(vp);
}
function follow(p) {
  source = new EventSource('logs/stream?' + p);
  source.onopen = () => setStatus(paused ? 'paused' : 'live', paused ? 'paused' : 'live');
  source.onerror = () => setStatus('reconnecting…', 'lost');
  source.onmessage = (event) => {
    const entry = JSON.parse(event.data);
    countLive(entry);
    if (paused) {
      if (held.length < 10000) held.push(entry);
      showCount();
    } else addLines([entry]);
  };
  source.addEventListener('dropped', (event) => {
    countEl.textContent += ' (' + JSON.parse(event.data).dropped + ' live lines skipped: too fast to show)';
  });
}
function traceRequest(requestId) {
  form.reset();
  form.elements.requestId.value = requestId;
  form.elements.limit.value = 5000;
  showTrace();
  search(true);
}
pauseButton.addEventListener('click', () => {
  paused = !paused;
  pauseButton.textContent = paused ? 'Resume' : 'Pause';
  setStatus(paused ? 'paused' : 'live', paused ? 'paused' : 'live');
  if (!paused) { const waiting = held; held = []; addLines(waiting); }
});
form.addEventListener('submit', (event) => {
  event.preventDefault();
  showTrace();
  search(true);
});
$('clear').addEventListener('click', () => { form.reset(); showTrace(); search(true); });
window.addEventListener('popstate', () => { fillForm(new URLSearchParams(location.search)); search(false); });
fillForm(new URLSearchParams(location.search));
search(false);
`;
