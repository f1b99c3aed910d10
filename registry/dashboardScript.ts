/**
 * The registry dashboard's script (registry/dashboard.ts puts it in the page under the CSP nonce). The table
 * follows GET /services/stream; every time is shown one way, ISO 8601 in UTC, with a relative time beside it
 * that ticks. A row (or its link, #/instances/<id>) opens the instance's history; the chart reads GET /timeline
 * and the replicas view GET /replicas. Plain DOM, no build step: written without template literals, as it sits
 * inside one.
 */
export const dashboardScript = `
const instances = new Map();
const $ = (id) => document.getElementById(id);
const rows = $('rows'), statusEl = $('status'), detail = $('detail');
let selected;
let replicas;

function text(value) { return value === undefined || value === null ? '' : String(value); }
function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) node.setAttribute(k, v);
  for (const child of children || []) node.append(child);
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
// One time format: ISO 8601 in UTC, to the second.
function utc(iso) { return iso ? new Date(iso).toISOString().slice(0, 19) + 'Z' : ''; }
function span(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + s + 's';
}
function relative(iso) {
  const ms = Date.now() - Date.parse(iso);
  return ms >= 0 ? span(ms) + ' ago' : 'in ' + span(-ms);
}
/** A time as <time>: its ISO UTC text and how long ago, which the once-a-second render keeps ticking. */
function when(iso, prefix) {
  if (!iso) return '';
  return el('time', { datetime: iso, title: iso }, [(prefix || '') + utc(iso) + ' (' + relative(iso) + ')']);
}
function reasonText(inst) {
  if (inst.state === 'down' && inst.downReason) return inst.downReason.code + ': ' + inst.downReason.message;
  return inst.lastError || '';
}

function render() {
  const byService = new Map();
  for (const inst of instances.values()) {
    if (!byService.has(inst.serviceName)) byService.set(inst.serviceName, []);
    byService.get(inst.serviceName).push(inst);
  }
  const names = [...byService.keys()].sort();
  const fragment = document.createDocumentFragment();
  let up = 0;
  for (const name of names) {
    const list = byService.get(name).sort((a, b) => a.serviceURL.localeCompare(b.serviceURL));
    const live = list.filter((i) => i.state === 'up').length;
    up += live;
    fragment.append(el('tr', { class: 'service', 'data-service': name }, [el('td', { colspan: '9' }, [name + ' (' + live + '/' + list.length + ' up)'])]));
    for (const inst of list) {
      const link = el('a', { href: '#/instances/' + encodeURIComponent(inst.instanceId), title: inst.instanceId }, [inst.serviceURL]);
      const state = el('span', { class: 'state ' + inst.state }, [inst.state]);
      const lastCheck = inst.heartbeatURL ? when(inst.lastCheckAt) : when(inst.leaseExpiresAt, 'lease until ');
      const since = inst.state === 'up' ? when(inst.upSince) : when(inst.downSince, 'down since ');
      fragment.append(el('tr', { class: 'instance' + (inst.instanceId === selected ? ' selected' : ''), 'data-instance': inst.instanceId, 'data-service': inst.serviceName, 'data-state': inst.state }, [
        el('td', {}, [link]),
        el('td', { class: 'state-cell' }, [state]),
        el('td', { class: 'since' }, [since]),
        el('td', {}, [lastCheck]),
        el('td', {}, [inst.lastLatencyMs === undefined ? '' : inst.lastLatencyMs + ' ms']),
        el('td', {}, [text(inst.consecutiveFailures)]),
        el('td', { class: 'reason', 'data-code': inst.state === 'down' && inst.downReason ? inst.downReason.code : undefined }, [reasonText(inst)]),
        el('td', {}, [text(inst.restarts || 0)]),
        el('td', {}, [(inst.requiredServices || []).join(', ')]),
      ]));
    }
  }
  rows.replaceChildren(fragment);
  $('empty').hidden = instances.size > 0;
  $('summary').textContent = names.length + ' services, ' + up + '/' + instances.size + ' instances up';
  for (const node of document.querySelectorAll('#detail time, #replicas time')) node.textContent = node.textContent.replace(/\\(.*\\)$/, '(' + relative(node.getAttribute('datetime')) + ')');
}

// The detail view: the instance's transitions (GET /services/:id/history).
async function showDetail(id) {
  selected = id;
  render();
  if (!id) { detail.hidden = true; return; }
  let body;
  try {
    const res = await fetch('/services/' + encodeURIComponent(id) + '/history');
    body = await res.json();
    if (!res.ok) throw new Error(body.error ? body.error.message : 'answered ' + res.status);
  } catch (err) {
    detail.hidden = false;
    detail.replaceChildren(el('h2', {}, ['Instance ' + id]), el('p', { class: 'muted' }, [String(err.message || err)]));
    return;
  }
  if (selected !== id) return;
  const inst = body.instance;
  const list = el('tbody', { id: 'history' });
  for (const h of body.transitions.slice().reverse()) {
    const what = h.reason ? h.reason.code + ': ' + h.reason.message : h.previous ? 'in place of ' + h.previous.instanceId + ' at ' + h.previous.serviceURL : '';
    list.append(el('tr', { 'data-event': h.event }, [el('td', {}, [when(h.at)]), el('td', {}, [h.event]), el('td', {}, [el('span', { class: 'state ' + h.state }, [h.state])]), el('td', {}, [what])]));
  }
  detail.hidden = false;
  detail.replaceChildren(
    el('h2', {}, [inst.serviceName + ' at ' + inst.serviceURL]),
    el('p', {}, ['instance ' + inst.instanceId + ' · registered ', when(inst.registeredAt), ' · restarts ' + (inst.restarts || 0) + ' · ', el('a', { href: '/services/' + encodeURIComponent(id) + '/history' }, ['JSON']), ' · ', el('a', { href: '#', id: 'close' }, ['close'])]),
    el('table', {}, [el('thead', {}, [el('tr', {}, [el('th', {}, ['time (UTC)']), el('th', {}, ['event']), el('th', {}, ['state']), el('th', {}, ['reason'])])]), list]),
  );
}
function fromHash() {
  const match = /^#\\/instances\\/(.+)$/.exec(location.hash);
  void showDetail(match ? decodeURIComponent(match[1]) : undefined);
}
rows.addEventListener('click', (e) => {
  const row = e.target.closest('tr[data-instance]');
  if (!row) return;
  e.preventDefault();
  location.hash = '#/instances/' + encodeURIComponent(row.dataset.instance);
});
window.addEventListener('hashchange', fromHash);

function connect() {
  const source = new EventSource('/services/stream');
  source.addEventListener('snapshot', (e) => {
    instances.clear();
    for (const inst of JSON.parse(e.data).instances) instances.set(inst.instanceId, inst);
    statusEl.textContent = 'live'; statusEl.className = 'live';
    render();
  });
  for (const type of ['registered', 'updated', 'up', 'down']) {
    source.addEventListener(type, (e) => {
      const { instance, previous } = JSON.parse(e.data);
      if (previous) instances.delete(previous.instanceId);
      for (const [id, old] of instances) if (old.serviceURL === instance.serviceURL && id !== instance.instanceId) instances.delete(id);
      instances.set(instance.instanceId, instance);
      if (previous && previous.instanceId === selected) location.hash = '#/instances/' + encodeURIComponent(instance.instanceId);
      else if (instance.instanceId === selected) void showDetail(selected);
      render();
    });
  }
  for (const type of ['deregistered', 'evicted']) {
    source.addEventListener(type, (e) => {
      const { instance, replacedBy } = JSON.parse(e.data);
      instances.delete(instance.instanceId);
      // A restart took its place: the history goes on under the new instance.
      if (instance.instanceId === selected && replacedBy) location.hash = '#/instances/' + encodeURIComponent(replacedBy);
      render();
    });
  }
  // A summary of the checks, at most once a second: it lists only the instances whose failures changed.
  source.addEventListener('checked', (e) => {
    for (const c of JSON.parse(e.data).instances) {
      const inst = instances.get(c.instanceId);
      if (inst) Object.assign(inst, { lastError: undefined }, c);
    }
    render();
  });
  source.onerror = () => { statusEl.textContent = 'reconnecting…'; statusEl.className = 'lost'; };
}
// Routine checks are not streamed one by one: check times and latencies come from the listing now and then.
async function refreshChecks() {
  try {
    const res = await fetch('/services');
    if (!res.ok) return;
    for (const fresh of (await res.json()).instances) {
      const inst = instances.get(fresh.instanceId);
      if (inst) { inst.lastCheckAt = fresh.lastCheckAt; inst.lastLatencyMs = fresh.lastLatencyMs; }
    }
  } catch {
    // the stream's status already says when the registry is unreachable
  }
}

// The chart: instances up (and down) over time, and the log service's lines per minute when it is up.
async function refreshChart() {
  let timeline;
  try {
    const res = await fetch('/timeline');
    if (!res.ok) return;
    timeline = await res.json();
  } catch {
    return;
  }
  const samples = timeline.samples;
  const chart = $('chart');
  const W = 600, H = 120, P = 4;
  const t0 = Date.parse(samples[0].at), t1 = Math.max(t0 + 1, Date.parse(samples[samples.length - 1].at));
  const x = (s) => P + ((Date.parse(s.at) - t0) / (t1 - t0)) * (W - 2 * P);
  const maxCount = Math.max(1, ...samples.map((s) => s.up + s.down));
  const logs = samples.filter((s) => s.logLinesPerMinute !== undefined);
  const maxLogs = Math.max(1, ...logs.map((s) => s.logLinesPerMinute));
  // Steps, not slopes: a count holds until the next sample.
  const line = (list, y, cls) => svg('polyline', {
    class: cls, fill: 'none', 'stroke-width': '2',
    points: list.flatMap((s, i) => (i ? [[x(s), y(list[i - 1])]] : []).concat([[x(s), y(s)]])).map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' '),
  });
  chart.replaceChildren(
    line(samples, (s) => H - P - (s.up / maxCount) * (H - 2 * P), 'up'),
    line(samples, (s) => H - P - (s.down / maxCount) * (H - 2 * P), 'down'),
    ...(logs.length ? [line(logs, (s) => H - P - (s.logLinesPerMinute / maxLogs) * (H - 2 * P), 'logs')] : []),
  );
  const last = samples[samples.length - 1];
  const logNote = logs.length ? 'log lines/min ' + logs[logs.length - 1].logLinesPerMinute + ' (peak ' + maxLogs + ')' : 'log lines/min: no log service answering';
  $('chart-legend').textContent = 'since ' + utc(samples[0].at) + ' · up ' + last.up + ', down ' + last.down + ' (of at most ' + maxCount + ') · ' + logNote;
}

// Registry replicas (REGISTRY_STORE=etcd): each one, what it checks and patches, and etcd's health.
async function refreshReplicas() {
  try {
    const res = await fetch('/replicas');
    if (!res.ok) return;
    replicas = await res.json();
  } catch {
    return;
  }
  const box = $('replicas');
  box.hidden = replicas.store !== 'etcd';
  if (box.hidden) return;
  const etcd = replicas.etcd || {};
  const name = (id) => { const i = instances.get(id); return i ? i.serviceName + ' ' + i.serviceURL : id; };
  const body = el('tbody', {}, (replicas.replicas || []).map((r) => el('tr', { 'data-replica': r.id }, [
    el('td', {}, [r.id + (r.id === replicas.replica ? ' (this one)' : '')]),
    el('td', {}, [r.url]),
    el('td', { class: 'owns' }, [String(r.instances.length)]),
    el('td', { class: 'subscribers' }, [String(r.subscribers.length)]),
    el('td', {}, [el('details', {}, [el('summary', {}, ['which']), el('div', {}, [r.instances.map(name).join(', ') || 'none'])])]),
  ])));
  box.replaceChildren(
    el('h2', {}, ['Replicas']),
    el('p', { id: 'etcd', 'data-status': etcd.status }, ['etcd ' + (replicas.etcdEndpoints || []).join(', ') + ': ' + (etcd.status === 'ok' ? 'ok' : 'unreachable (' + text(etcd.reason) + ')')]),
    el('table', {}, [el('thead', {}, [el('tr', {}, ['replica', 'URL', 'checks', 'patches', 'instances'].map((h) => el('th', {}, [h])))]), body]),
  );
}

// The platform's processes when npm start runs it (GET /platform, as platform ps shows them); hidden otherwise.
async function refreshPlatform() {
  let status;
  try {
    const res = await fetch('/platform');
    if (!res.ok) return;
    status = await res.json();
  } catch {
    return;
  }
  const box = $('platform');
  box.hidden = false;
  const rows = (status.processes || []).map((p) => el('tr', { 'data-process': p.name }, [
    el('td', {}, [p.name]),
    el('td', {}, [p.pid === null ? '' : String(p.pid)]),
    el('td', {}, [el('span', { class: 'state ' + (p.state === 'up' ? 'up' : p.state === 'stopped' ? 'down' : '') }, [p.state])]),
    el('td', {}, [String(p.restarts)]),
    el('td', {}, [p.uptimeMs === null ? '' : span(p.uptimeMs)]),
    el('td', {}, [p.lastExitCode === null ? '' : String(p.lastExitCode)]),
  ]));
  box.replaceChildren(
    el('h2', {}, ['Processes' + (status.launcherRunning ? '' : ' (the launcher is gone: its last status)')]),
    el('table', {}, [el('thead', {}, [el('tr', {}, ['process', 'pid', 'state', 'restarts', 'uptime', 'last exit'].map((h) => el('th', {}, [h])))]), el('tbody', {}, rows)]),
  );
}

connect();
fromHash();
void refreshPlatform();
setInterval(refreshPlatform, 2000);
void refreshChart();
void refreshReplicas();
setInterval(render, 1000);
setInterval(refreshChecks, 10000);
setInterval(refreshChart, 10000);
setInterval(refreshReplicas, 2000);
`;
