/**
 * The log viewer (GET /): filters kept in the URL, pickers of the known services and levels, a bar of
 * log volume over time, a live tail that can be paused, level colours, and a click on a request id to
 * see that request's lines from every service. Its script is logservice/viewerScript.ts.
 * `nonce` is the response's CSP nonce (shared/pageHeaders.ts), which the inline script and style carry.
 */
import { pageHead } from '../shared/pageHead.ts';
import { LEVELS } from './protocol.ts';
import { viewerScript } from './viewerScript.ts';

const levelOptions = LEVELS.map((level, rank) => `<option value="${level}">${rank === 0 ? level : `${level} and worse`}</option>`).join('');

const VIEWER_CSS = `  form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: .6rem; }
  label { display: flex; flex-direction: column; font-size: .75rem; color: #5b6570; gap: .15rem; }
  input, select, button { font: inherit; font-size: .9rem; padding: .3rem .45rem; border: 1px solid #c8cdd3; border-radius: .3rem; background: #fff; }
  button { cursor: pointer; background: #eef0f3; }
  button.primary { background: #1f5fbf; color: #fff; border-color: #1f5fbf; }
  .bar { display: flex; gap: .8rem; align-items: center; margin-bottom: .6rem; font-size: .85rem; color: #5b6570; }
  #status.paused { background: #fde9b8; color: #6b4a00; }
  #trace { padding: .35rem .6rem; background: #e4ecfa; border-radius: .3rem; }
  [hidden] { display: none !important; }
  .message { padding: .45rem .7rem; border-radius: .3rem; margin-bottom: .6rem; font-size: .9rem; }
  #error { background: #f8d0d0; color: #7a1414; }
  #notice { background: #fde9b8; color: #6b4a00; }
  #volume { background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); padding: .35rem .45rem .2rem; margin-bottom: .6rem; }
  #chart { display: block; width: 100%; height: 60px; }
  #chart .hit { fill: transparent; }
  #chart .bucket { cursor: pointer; }
  #chart .bucket:hover .hit { fill: #eef0f3; }
  #volume-text { font-size: .72rem; color: #5b6570; }
  .v-error { fill: #d64545; } .v-warn { fill: #e0a526; } .v-info { fill: #5b8fd9; } .v-http { fill: #4caf72; }
  .v-verbose, .v-debug, .v-silly { fill: #aab2bc; }
  #logbox { max-height: 70vh; overflow: auto; }
  table { font-family: ui-monospace, monospace; font-size: .8rem; }
  th, td { padding: .25rem .45rem; border-bottom: 1px solid #eceef1; }
  th { font-family: system-ui, sans-serif; position: sticky; top: 0; }
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
`;

export function viewerPage(nonce: string): string {
  return `${pageHead({ nonce, title: 'Switchboard logs', admin: true, css: VIEWER_CSS })}<body>
<h1>Switchboard logs</h1>
<form id="filters">
  <label>service <input name="service" placeholder="any (a,b)" list="services" autocomplete="off"></label>
  <datalist id="services"></datalist>
  <label>level <select name="level"><option value="">any</option>${levelOptions}</select></label>
  <label>request id <input name="requestId" size="36"></label>
  <label>text <input name="q" placeholder="in message or metadata"></label>
  <label>since <input name="since" placeholder="15m, 2h, ISO date"></label>
  <label>until <input name="until" placeholder="15m, ISO date"></label>
  <label>limit <input name="limit" type="number" min="1" max="5000" value="200" class="narrow"></label>
  <button class="primary" type="submit">Search</button>
  <button type="button" id="clear">Clear</button>
</form>
<div class="bar">
  <span id="status">connecting…</span>
  <button type="button" id="pause">Pause</button>
  <span id="count"></span>
  <span id="trace" hidden></span>
</div>
<div id="error" class="message" role="alert" hidden></div>
<div id="notice" class="message" role="status" hidden></div>
<div id="volume" hidden><svg id="chart" preserveAspectRatio="none" role="img" aria-label="lines per time bucket"></svg><span id="volume-text"></span></div>
<div id="logbox">
<table>
  <thead><tr><th>time</th><th>level</th><th>service</th><th>request</th><th>message</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div id="empty" hidden>No lines match.</div>
</div>
<script nonce="${nonce}">${viewerScript}</script>
</body>
</html>`;
}
