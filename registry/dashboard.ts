/**
 * The registry's dashboard (GET /): every service and instance with state, last check and its
 * latency, failures and uptime, kept live from GET /services/stream (server-sent events).
 * `nonce` is the response's CSP nonce (shared/pageHeaders.ts), which the inline script and style carry.
 */
export function dashboardPage(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard registry</title>
<style nonce="${nonce}">
  :root { font-family: system-ui, sans-serif; color: #1d232a; background: #f6f7f9; }
  body { margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  .sub { color: #5b6570; margin-bottom: 1rem; }
  #status { display: inline-block; padding: .1rem .5rem; border-radius: 1rem; font-size: .8rem; background: #ddd; }
  #status.live { background: #c9f1d4; color: #145a2a; }
  #status.lost { background: #f8d0d0; color: #7a1414; }
  table { width: 100%; border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e6e8eb; font-size: .9rem; }
  th { background: #eef0f3; font-weight: 600; }
  tr.service td { background: #f2f4f7; font-weight: 600; }
  .state { font-weight: 600; padding: .1rem .45rem; border-radius: .3rem; }
  .state.up { background: #c9f1d4; color: #145a2a; }
  .state.down { background: #f8d0d0; color: #7a1414; }
  .muted { color: #8a939c; }
  a { color: #1f5fbf; }
  #empty { padding: 2rem; text-align: center; color: #5b6570; }
</style>
</head>
<body>
<h1>Switchboard registry</h1>
<div class="sub"><span id="status">connecting…</span> <span id="summary"></span></div>
<table>
  <thead><tr><th>instance</th><th>state</th><th>last check</th><th>latency</th><th>failures</th><th>uptime</th><th>requires</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div id="empty" hidden>No services are registered.</div>
<script nonce="${nonce}">
const instances = new Map();
const rows = document.getElementById('rows');
const statusEl = document.getElementById('status');

function text(value) { return value === undefined || value === null ? '' : String(value); }
function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children || []) node.append(child);
  return node;
}
function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 1) return 'just now';
  if (s < 90) return Math.round(s) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}
function duration(iso) {
  if (!iso) return '';
  let s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + s + 's';
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
    fragment.append(el('tr', { class: 'service', 'data-service': name }, [el('td', { colspan: '7' }, [name + ' (' + live + '/' + list.length + ' up)'])]));
    for (const inst of list) {
      const link = el('a', { href: inst.serviceURL, target: '_blank', rel: 'noopener' }, [inst.serviceURL]);
      const state = el('span', { class: 'state ' + inst.state }, [inst.state]);
      const lastCheck = inst.heartbeatURL ? ago(inst.lastCheckAt) : (inst.leaseExpiresAt ? 'lease until ' + new Date(inst.leaseExpiresAt).toLocaleTimeString() : '');
      fragment.append(el('tr', { 'data-instance': inst.instanceId, 'data-service': inst.serviceName, 'data-state': inst.state }, [
        el('td', {}, [link]),
        el('td', { class: 'state-cell' }, [state]),
        el('td', {}, [lastCheck]),
        el('td', {}, [inst.lastLatencyMs === undefined ? '' : inst.lastLatencyMs + ' ms']),
        el('td', { title: text(inst.lastError) }, [text(inst.consecutiveFailures) + (inst.lastError ? ' (' + inst.lastError + ')' : '')]),
        el('td', {}, [inst.state === 'up' ? duration(inst.upSince) : el('span', { class: 'muted' }, ['down ' + duration(inst.downSince)])]),
        el('td', {}, [(inst.requiredServices || []).join(', ')]),
      ]));
    }
  }
  rows.replaceChildren(fragment);
  document.getElementById('empty').hidden = instances.size > 0;
  document.getElementById('summary').textContent = names.length + ' services, ' + up + '/' + instances.size + ' instances up';
}

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
      const { instance } = JSON.parse(e.data);
      for (const [id, old] of instances) if (old.serviceURL === instance.serviceURL && id !== instance.instanceId) instances.delete(id);
      instances.set(instance.instanceId, instance);
      render();
    });
  }
  for (const type of ['deregistered', 'evicted']) {
    source.addEventListener(type, (e) => { instances.delete(JSON.parse(e.data).instance.instanceId); render(); });
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
connect();
setInterval(render, 1000);
setInterval(refreshChecks, 10000);
</script>
</body>
</html>`;
}
