/**
 * The registry's dashboard (GET /): every service and instance with its state and since when, last check
 * and latency, failures, why it is down, restarts; an instance's history on a click; a chart of instances
 * up (and log lines per minute); the replicas when there are several. Kept live from GET /services/stream.
 * `nonce` is the response's CSP nonce (shared/pageHeaders.ts), which the inline script and style carry.
 */
import { pageHead } from '../shared/pageHead.ts';
import { dashboardScript } from './dashboardScript.ts';

const DASHBOARD_CSS = `  body { max-width: 1300px; padding: 1.5rem; }
  h1 { margin: 0 0 .25rem; }
  h2 { font-size: 1.1rem; margin: 1.25rem 0 .5rem; }
  .sub { color: #5b6570; margin-bottom: 1rem; }
  #status { display: inline-block; font-size: .8rem; }
  th, td { padding: .45rem .6rem; border-bottom: 1px solid #e6e8eb; font-size: .9rem; }
  tr.service td { background: #f2f4f7; font-weight: 600; }
  tr.instance { cursor: pointer; }
  tr.instance:hover td, tr.selected td { background: #eef4ff; }
  .state { font-weight: 600; padding: .1rem .45rem; border-radius: .3rem; }
  .state.up { background: #c9f1d4; color: #145a2a; }
  .state.down { background: #f8d0d0; color: #7a1414; }
  .muted { color: #8a939c; }
  time { white-space: nowrap; font-variant-numeric: tabular-nums; }
  a { color: #1f5fbf; }
  #empty { padding: 2rem; text-align: center; color: #5b6570; }
  #detail, #replicas, #timeline { margin-top: 1rem; padding: .75rem 1rem; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  #detail h2, #replicas h2, #timeline h2 { margin-top: 0; }
  #chart { width: 100%; height: 120px; background: #fafbfc; }
  #chart .up { stroke: #1f9d55; } #chart .down { stroke: #c53030; } #chart .logs { stroke: #1f5fbf; stroke-dasharray: 4 3; }
  .legend { font-size: .85rem; color: #5b6570; }
  .key-up { color: #1f9d55; } .key-down { color: #c53030; } .key-logs { color: #1f5fbf; }
`;

export function dashboardPage(nonce: string): string {
  return `${pageHead({ nonce, title: 'Switchboard registry', admin: true, css: DASHBOARD_CSS })}<body>
<h1>Switchboard registry</h1>
<div class="sub"><span id="status">connecting…</span> <span id="summary"></span> · times in UTC</div>
<table>
  <thead><tr><th>instance</th><th>state</th><th>since</th><th>last check</th><th>latency</th><th>failures</th><th>reason</th><th>restarts</th><th>requires</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div id="empty" hidden>No services are registered.</div>
<section id="detail" hidden></section>
<section id="timeline">
  <h2>Instances over time</h2>
  <svg id="chart" viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label="instances up over time"></svg>
  <div class="legend"><span class="key-up">— up</span> <span class="key-down">— down</span> <span class="key-logs">- - log lines per minute</span> · <span id="chart-legend"></span></div>
</section>
<section id="replicas" hidden></section>
<section id="platform" hidden></section>
<script nonce="${nonce}">${dashboardScript}</script>
</body>
</html>`;
}
