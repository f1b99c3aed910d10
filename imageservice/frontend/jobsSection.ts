/**
 * The upload page's jobs section: drop a folder (or pick one) or a .zip, and it becomes one job at the master
 * (jobRoutes.ts): its PNGs are sent four at a time with an idempotency key each (a retry is the same task), a
 * .zip is sent whole and read by the frontend. A card per job shows its progress from GET jobs/:id, pauses and
 * resumes it, and downloads all its results as one .zip. Jobs and their file names are kept in localStorage, so
 * a reload shows them again. All text from the server is set with textContent.
 */
export const JOBS_CSS = `
  #jobs { margin-top: 2.5rem; border-top: 1px solid #ddd; padding-top: 1rem; }
  #job-drop { border: 2px dashed #888; border-radius: 8px; padding: 1.5rem; text-align: center; background: #fafafa; }
  #job-drop.over { background: #e8f0ff; border-color: #36c; }
  .job { border: 1px solid #ddd; border-radius: 6px; padding: .75rem; margin: .75rem 0; }
  .job .actions { display: flex; gap: .5rem; margin-top: .5rem; }
  .job .skipped { color: #7a5a00; font-size: .9em; }
  .job .error { color: #b00020; font-weight: 600; }
`;

export const JOBS_HTML = `
<section id="jobs">
<h2>Jobs: a whole folder or a .zip</h2>
<p>Drop a folder or a .zip archive: its PNGs become one job, which you can pause, resume and download as one .zip.
What is not a PNG is skipped and listed.</p>
<div class="controls">
  <label>Job name <input id="job-name" placeholder="the folder's or archive's name"></label>
  <label>Folder <input id="job-folder" type="file" webkitdirectory multiple></label>
  <label>Archive <input id="job-zip" type="file" accept=".zip,application/zip"></label>
</div>
<div id="job-drop" tabindex="0">Drop a folder or a .zip here</div>
<div id="job-list" aria-live="polite"></div>
</section>`;

export const JOBS_SCRIPT = `
(() => {
  const STORE = 'switchboard.jobs';
  const list = document.getElementById('job-list');
  const drop = document.getElementById('job-drop');
  const opSelect = document.getElementById('op');
  const nameInput = document.getElementById('job-name');
  const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

  function saved() { try { return JSON.parse(localStorage.getItem(STORE) || '[]'); } catch { return []; } }
  function save(job) {
    const all = saved().filter((j) => j.id !== job.id);
    all.unshift(job);
    try { localStorage.setItem(STORE, JSON.stringify(all.slice(0, 20))); } catch { /* full: the card still works */ }
  }
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  async function call(url, init) {
    const res = await fetch(url, init);
    const body = res.headers.get('content-type')?.includes('json') ? await res.json() : undefined;
    if (!res.ok) throw new Error((body && body.error && body.error.message) || 'HTTP ' + res.status);
    return body;
  }
  const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
  async function keyOf(path, bytes) {
    // crypto.subtle needs a secure context (https or localhost); elsewhere the name and size stand in.
    if (!crypto.subtle) return 'n-' + bytes.byteLength + '-' + [...path].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
    const content = hex(await crypto.subtle.digest('SHA-256', bytes));
    return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(path + '\\u0000' + content)));
  }

  function card(job) {
    const node = el('div', 'job');
    node.dataset.jobId = String(job.id);
    node.append(el('div', 'name', job.name + ' (' + job.op + ')'));
    const bar = el('progress');
    const status = el('div', 'status', 'starting');
    const skipped = el('div', 'skipped');
    const actions = el('div', 'actions');
    const pause = el('button', 'pause', 'Pause');
    const download = el('button', 'download', 'Download results (.zip)');
    pause.type = download.type = 'button';
    download.disabled = true;
    actions.append(pause, download);
    node.append(bar, status, skipped, actions);
    list.prepend(node);
    let state = job.state || 'active';
    pause.addEventListener('click', async () => {
      try { show(await call('jobs/' + job.id + '/' + (state === 'paused' ? 'resume' : 'pause'), { method: 'POST' })); }
      catch (err) { status.textContent = err.message; }
    });
    download.addEventListener('click', async () => {
      try {
        const res = await fetch('jobs/' + job.id + '/results.zip', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ names: job.names || {} }) });
        if (!res.ok) throw new Error((await res.json()).error.message);
        const link = el('a');
        link.href = URL.createObjectURL(await res.blob());
        link.download = 'job-' + job.id + '.zip';
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      } catch (err) { status.textContent = 'Download failed: ' + err.message; }
    });
    function show(view) {
      state = view.state;
      const ended = view.counts.done + view.counts.failed;
      bar.max = Math.max(1, view.total);
      bar.value = ended;
      const eta = view.etaSeconds === null ? '' : ', about ' + view.etaSeconds + ' s left';
      const rate = view.imagesPerSecond === null ? '' : ', ' + view.imagesPerSecond + ' images/s';
      status.textContent = view.state + ': ' + ended + ' of ' + view.total + ' ended (' + view.counts.done + ' done, ' + view.counts.failed + ' failed, ' + view.counts.running + ' running, ' + view.counts.pending + ' pending)' + rate + eta;
      pause.textContent = view.state === 'paused' ? 'Resume' : 'Pause';
      pause.disabled = view.state === 'cancelled';
      download.disabled = view.counts.done === 0;
    }
    const skip = (names) => { if (names.length) skipped.textContent = 'Skipped ' + names.length + ': ' + names.join('; '); };
    async function poll() {
      try { show(await call('jobs/' + job.id)); } catch (err) { status.textContent = err.message; }
      setTimeout(poll, 1000);
    }
    return { show, skip, poll, fail: (text) => { status.textContent = text; status.className = 'status error'; } };
  }

  async function start(name, send) {
    let job;
    try { job = await call('jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: nameInput.value.trim() || name, op: opSelect.value }) }); }
    catch (err) { const c = card({ id: 0, name, op: opSelect.value }); c.fail('The job could not be made: ' + err.message); return; }
    job.names = {};
    save(job);
    const c = card(job);
    c.show(job);
    c.poll();
    try { await send(job, c); } catch (err) { c.fail(err.message); }
    save(job);
  }

  async function sendFiles(entries) {
    const top = entries[0].path.split('/')[0] || 'folder';
    await start(top, async (job, c) => {
      const skipped = [];
      let next = 0;
      async function one() {
        while (next < entries.length) {
          const { file, path } = entries[next++];
          const bytes = await file.arrayBuffer();
          const head = new Uint8Array(bytes.slice(0, 8));
          if (head.length < 8 || SIGNATURE.some((b, i) => head[i] !== b)) { skipped.push(path + ' (not a PNG)'); continue; }
          const task = await call('jobs/' + job.id + '/images', { method: 'POST', headers: { 'content-type': 'image/png', 'idempotency-key': await keyOf(path, bytes) }, body: bytes });
          job.names[task.id] = path;
        }
      }
      await Promise.all([one(), one(), one(), one()]);
      c.skip(skipped);
    });
  }

  async function sendZip(file) {
    await start(file.name.replace(/\\.zip$/i, ''), async (job, c) => {
      const result = await call('jobs/' + job.id + '/archive', { method: 'POST', headers: { 'content-type': 'application/zip' }, body: file });
      for (const t of result.tasks) job.names[t.task] = t.name;
      c.skip(result.skipped.map((s) => s.name + ' (' + s.reason + ')'));
    });
  }

  /** Every file under a dropped folder, with its path (webkitGetAsEntry; readEntries gives at most 100 at a time). */
  async function walk(entry, prefix, out) {
    if (entry.isFile) {
      out.push({ file: await new Promise((resolve, reject) => entry.file(resolve, reject)), path: prefix + entry.name });
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, prefix + entry.name + '/', out);
    }
  }
  const byPath = (a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

  document.getElementById('job-folder').addEventListener('change', (e) => {
    const files = [...e.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name })).sort(byPath);
    e.target.value = '';
    if (files.length) sendFiles(files);
  });
  document.getElementById('job-zip').addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (file) sendZip(file);
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const items = [...e.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    const files = [...e.dataTransfer.files];
    if (files.length === 1 && /\\.zip$/i.test(files[0].name) && !(items[0] && items[0].isDirectory)) return sendZip(files[0]);
    const found = [];
    for (const entry of items) await walk(entry, '', found);
    if (found.length) sendFiles(found.sort(byPath));
  });

  for (const job of saved()) { const c = card(job); c.poll(); }
})();
`;
