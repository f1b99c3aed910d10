/**
 * The events service's page (GET /): what was published, and each subscriber's queue, deliveries,
 * drops and retries, refreshed every 2 s from GET /topics and GET /subscribers. Plain DOM, no build
 * step; stored text is set as textContent, never as markup. `nonce` is the response's CSP nonce.
 */
import { pageHead } from '../shared/pageHead.ts';

const PANEL_CSS = `  .bar { display: flex; gap: 1.2rem; align-items: center; margin-bottom: .8rem; font-size: .9rem; color: #5b6570; }
  table { font-size: .85rem; }
  th, td { padding: .35rem .5rem; border-bottom: 1px solid #eceff2; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .up { color: #145a2a; } .down, .failing { color: #a11a1a; } .dropped { color: #6b4a00; }
  .empty { color: #5b6570; padding: 1rem; }
`;

export function panelPage(nonce: string): string {
  return `${pageHead({ nonce, title: 'Switchboard events', admin: true, css: PANEL_CSS })}<body>
<h1>Events</h1>
<div class="bar"><span id="status">connecting</span><span id="published"></span><span id="totals"></span></div>
<table>
  <thead><tr><th>subscriber</th><th>kind</th><th>mode</th><th>state</th><th>topics</th><th>queued</th><th>delivered</th><th>dropped</th><th>retries</th><th>last delivered</th><th>last error</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script nonce="${nonce}">
const rows = document.getElementById('rows');
const status = document.getElementById('status');
function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null ? '' : String(text);
  if (className) td.className = className;
  row.appendChild(td);
}
async function refresh() {
  try {
    const [topics, listing] = await Promise.all(['topics', 'subscribers'].map((p) => fetch(p).then((r) => { if (!r.ok) throw new Error(r.status); return r.json(); })));
    status.textContent = 'live';
    status.className = 'live';
    document.getElementById('published').textContent = 'events published: ' + topics.lastId + ' on ' + topics.topics.length + ' topic(s)';
    let queued = 0, delivered = 0, dropped = 0;
    rows.replaceChildren();
    for (const s of listing.subscribers) {
      queued += s.queued; delivered += s.delivered; dropped += s.dropped;
      const row = document.createElement('tr');
      row.dataset.key = s.key;
      cell(row, s.target); cell(row, s.kind); cell(row, s.mode); cell(row, s.state, s.state);
      cell(row, s.topics.join(' ')); cell(row, s.queued, 'num'); cell(row, s.delivered, 'num'); cell(row, s.dropped, 'num'); cell(row, s.retries, 'num');
      cell(row, s.lastDeliveredAt); cell(row, s.lastError);
      rows.appendChild(row);
    }
    if (listing.subscribers.length === 0) {
      const row = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 11; td.className = 'empty'; td.textContent = 'no subscribers';
      row.appendChild(td); rows.appendChild(row);
    }
    document.getElementById('totals').textContent = 'queued ' + queued + ', delivered ' + delivered + ', dropped ' + dropped;
  } catch (err) {
    status.textContent = 'unreachable';
    status.className = 'lost';
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>`;
}
