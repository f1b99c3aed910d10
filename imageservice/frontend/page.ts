/**
 * The upload page: drop or pick many PNGs, choose the operation, watch each upload's progress
 * and its task's state, compare before and after, download. All text from the server is shown
 * with textContent, never as HTML. `nonce` is the response's CSP nonce (shared/pageHeaders.ts).
 * Task states are pushed over server-sent events (GET taskEvents); the page polls isReady only while
 * they don't flow (no events service), and every few seconds as a safety net while they do.
 * The ids of this browser's tasks are kept in localStorage, so a reload lists them again, asked of the master.
 * Below them, the jobs section (jobsSection.ts): a folder or a .zip as one job.
 */
import { pageHead } from '../../shared/pageHead.ts';
import { JOBS_CSS, JOBS_HTML, JOBS_SCRIPT } from './jobsSection.ts';

const OP_LABELS: Record<string, string> = {
  'swap-rg': 'Swap red and green',
  'swap-rb': 'Swap red and blue',
  grayscale: 'Grayscale',
  invert: 'Invert colours',
};

const PAGE_CSS = `  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  #drop { border: 2px dashed #888; border-radius: 8px; padding: 2rem; text-align: center; background: #fafafa; }
  #drop.over { background: #e8f0ff; border-color: #36c; }
  .controls { margin: 1rem 0; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
  .file { border: 1px solid #ddd; border-radius: 6px; padding: .75rem; margin: .75rem 0; }
  .file.error { border-color: #e3a5ad; background: #fdf2f3; }
  /* The status takes the room left, and wraps under the name before it squeezes it. */
  .file header { display: flex; flex-wrap: wrap; justify-content: space-between; gap: .25rem 1rem; }
  .title { flex: 0 1 auto; min-width: 0; }
  .name { font-weight: 600; overflow-wrap: anywhere; }
  .op { color: #555; margin-left: .5rem; font-size: .9em; }
  .status { color: #555; flex: 1 1 18rem; text-align: right; overflow-wrap: anywhere; }
  .status.failed { color: #b00020; font-weight: 600; }
  .status.done { color: #0a7a2f; font-weight: 600; }
  progress { width: 100%; }
  .previews { display: flex; gap: 1rem; margin-top: .5rem; }
  .previews figure { margin: 0; flex: 1; }
  .previews img { max-width: 100%; max-height: 220px; background: repeating-conic-gradient(#ddd 0 25%, #fff 0 50%) 0 0/16px 16px; }
  .hidden { display: none; }
`;

export function uploadPage({ ops, maxUploadBytes, nonce }: { ops: readonly string[]; maxUploadBytes: number; nonce: string }): string {
  const options = ops.map((op) => `<option value="${op}">${OP_LABELS[op] ?? op}</option>`).join('');
  return `${pageHead({ nonce, title: 'Image pipeline', css: PAGE_CSS + JOBS_CSS })}<body>
<h1>Image pipeline</h1>
<p>Drop PNG images below (or pick them), choose what to do to them, and download the results. Images up to ${Math.round(maxUploadBytes / 2 ** 20)} MiB.</p>
<div class="controls">
  <label>Operation <select id="op">${options}</select></label>
  <label>Images <input id="files" type="file" accept="image/png" multiple></label>
</div>
<div id="drop" tabindex="0">Drop PNG files here</div>
<p id="recent" class="hidden">Your recent tasks, from this browser: <button id="clear" type="button">Clear list</button></p>
<div id="list" aria-live="polite"></div>${JOBS_HTML}
<script nonce="${nonce}">
(() => {
  const list = document.getElementById('list');
  const drop = document.getElementById('drop');
  const input = document.getElementById('files');
  const opSelect = document.getElementById('op');

  // Pushed task states: an inbox per task this page follows, and the last event of tasks it doesn't follow yet
  // (a fast worker may finish before the upload's answer names the task).
  let live = false;
  const inbox = new Map();
  const early = new Map();
  const wake = new Map();
  function onTask(t) {
    const box = inbox.get(t.id);
    if (!box) {
      early.set(t.id, t);
      if (early.size > 500) early.delete(early.keys().next().value);
      return;
    }
    box.push(t);
    const w = wake.get(t.id);
    if (w) w();
  }
  if (window.EventSource) {
    const stream = new EventSource('taskEvents');
    stream.addEventListener('status', (e) => { live = JSON.parse(e.data).live === true; });
    stream.addEventListener('task', (e) => onTask(JSON.parse(e.data)));
    stream.onerror = () => { live = false; };
  }
  function follow(id) {
    inbox.set(id, early.has(id) ? [early.get(id)] : []);
    early.delete(id);
  }
  /** The next pushed state of the task, or undefined after ms (then the caller asks isReady). */
  async function nextEvent(id, ms) {
    const box = inbox.get(id);
    if (!box.length) {
      await new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() { clearTimeout(timer); wake.delete(id); resolve(); }
        wake.set(id, done);
      });
    }
    return box.shift();
  }
  const RANK = { pending: 0, running: 1, done: 2, failed: 2 };
  /** Whether state b (from an event) is not older than a: by attempt, then by state. */
  function notOlder(a, b) {
    const aa = (a.task && a.task.attempts) || 0, ba = b.attempts || 0;
    return ba > aa || (ba === aa && RANK[b.state] >= RANK[a.state]);
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function errorWords(xhrOrResponse, body) {
    if (body && body.error && body.error.message) return body.error.message;
    if (xhrOrResponse && xhrOrResponse.status === 0) return 'The server could not be reached. Check your connection and try again.';
    return 'Something went wrong (HTTP ' + (xhrOrResponse ? xhrOrResponse.status : '?') + ').';
  }

  // This browser's accepted tasks {id, name, op}, oldest first; storage may be refused (private mode): it is a convenience.
  const RECENT_KEY = 'imagefrontend.recentTasks';
  function recentTasks() {
    try {
      const stored = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
      return Array.isArray(stored) ? stored.filter((t) => t && Number.isInteger(t.id) && t.id > 0 && typeof t.name === 'string' && typeof t.op === 'string') : [];
    } catch { return []; }
  }
  function saveRecent(tasks) {
    try { localStorage.setItem(RECENT_KEY, JSON.stringify(tasks.slice(-20))); } catch { /* not kept */ }
    document.getElementById('recent').classList.toggle('hidden', tasks.length === 0);
  }
  const remember = (task) => saveRecent(recentTasks().filter((t) => t.id !== task.id).concat([task]));
  const forget = (id) => saveRecent(recentTasks().filter((t) => t.id !== id));

  function opLabel(op) {
    const option = [...opSelect.options].find((o) => o.value === op);
    return option ? option.textContent : op;
  }

  /** A card for one file: its name and operation, a status line, a bar while uploading and waiting, previews. */
  function makeCard(name, op) {
    const card = el('div', 'file');
    card.dataset.name = name;
    card.dataset.op = op;
    const header = el('header');
    const title = el('span', 'title');
    title.append(el('span', 'name', name), el('span', 'op', opLabel(op)));
    const status = el('span', 'status', '');
    header.append(title, status);
    const bar = el('progress');
    bar.max = 100;
    bar.value = 0;
    const previews = el('div', 'previews');
    // Hidden until the image has loaded: a file the browser can't show never leaves a broken image.
    const before = el('figure', 'hidden');
    const beforeImg = el('img');
    beforeImg.alt = 'before';
    beforeImg.onload = () => before.classList.remove('hidden');
    beforeImg.onerror = () => before.remove();
    before.append(beforeImg, el('figcaption', '', 'Before'));
    const after = el('figure', 'hidden');
    const afterImg = el('img');
    afterImg.alt = 'after';
    const download = el('a', 'download', 'Download result');
    after.append(afterImg, el('figcaption', '', 'After '), download);
    previews.append(before, after);
    card.append(header, bar, previews);
    list.append(card);
    function setStatus(text, kind) {
      status.textContent = text;
      status.className = 'status' + (kind ? ' ' + kind : '');
      card.dataset.state = kind || '';
    }
    return {
      card,
      setStatus,
      showBefore(file) { beforeImg.src = URL.createObjectURL(file); },
      uploaded(percent) { bar.value = percent; },
      // No value: an indeterminate bar while the task waits for a worker or runs, not a full one.
      waiting() { bar.removeAttribute('value'); },
      failed(text) {
        setStatus(text, 'failed');
        bar.remove();
        card.classList.add('error');
      },
      done(id) {
        bar.value = 100;
        setStatus('Done', 'done');
        afterImg.src = 'getImage?id=' + id;
        const saveAs = name.replace(/\\.png$/i, '') + '-' + op + '.png';
        download.href = 'getImage?id=' + id + '&download=' + encodeURIComponent(saveAs);
        download.setAttribute('download', saveAs);
        after.classList.remove('hidden');
      },
    };
  }

  function addFile(file) {
    const op = opSelect.value;
    const view = makeCard(file.name, op);
    view.showBefore(file);
    const form = new FormData();
    form.append('op', op);
    form.append('uploadfile', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', 'submitTask');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        const percent = Math.round((e.loaded / e.total) * 100);
        view.uploaded(percent);
        view.setStatus(percent < 100 ? 'Uploading ' + percent + ' %' : 'Uploaded: the master is checking and storing it');
      }
    };
    xhr.onerror = () => view.failed('Upload failed: ' + errorWords(xhr, null));
    xhr.onload = () => {
      if (xhr.status !== 201) {
        view.failed('Upload refused: ' + errorWords(xhr, xhr.response));
        return;
      }
      const task = xhr.response;
      remember({ id: task.id, name: file.name, op });
      track(view, task.id, 'Uploaded as task ' + task.id + ': waiting for a worker');
    };
    view.setStatus('Uploading');
    xhr.send(form);
  }

  function track(view, id, text) {
    view.card.dataset.taskId = String(id);
    view.waiting();
    view.setStatus(text);
    follow(id);
    poll(view, id);
  }

  async function poll(view, id) {
    let failures = 0;
    let body;
    let pushed;
    for (;;) {
      if (pushed) {
        if (body && !notOlder(body, pushed)) { pushed = await nextEvent(id, live ? 5000 : 300); continue; }
        body = { state: pushed.state, error: pushed.error, task: { attempts: pushed.attempts } };
      } else try {
        const res = await fetch('isReady?id=' + id, { headers: { Accept: 'application/json' } });
        const got = await res.json().catch(() => undefined);
        if (!res.ok) {
          if (res.status >= 500 && ++failures < 30) {
            view.setStatus('Waiting: ' + errorWords(res, got));
            await new Promise((r) => setTimeout(r, 1000));
            continue;
          }
          if (res.status === 404) forget(id);
          view.failed('Cannot follow task ' + id + ': ' + errorWords(res, got));
          return;
        }
        body = got;
      } catch {
        if (++failures >= 30) { view.failed('The server could not be reached.'); return; }
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      failures = 0;
      if (body.state === 'done') return view.done(id);
      if (body.state === 'failed') return view.failed('Failed: ' + (body.error || 'the image could not be processed'));
      view.setStatus(body.state === 'running' ? 'Processing (attempt ' + body.task.attempts + ')' : 'Waiting for a worker');
      pushed = await nextEvent(id, live ? 5000 : 300);
    }
  }

  // After a reload: this browser's recent tasks, each asked of the master (through isReady) and followed.
  const restored = recentTasks();
  saveRecent(restored);
  for (const t of restored) track(makeCard(t.name, t.op), t.id, 'Task ' + t.id + ': asking the master');
  document.getElementById('clear').addEventListener('click', () => {
    saveRecent([]);
    for (const card of [...list.querySelectorAll('.file[data-task-id]')]) card.remove();
  });

  function addFiles(files) {
    for (const file of files) addFile(file);
  }
  input.addEventListener('change', () => { addFiles(input.files); input.value = ''; });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); addFiles(e.dataTransfer.files); });
})();
</script><script nonce="${nonce}">${JOBS_SCRIPT}</script>
</body>
</html>`;
}
