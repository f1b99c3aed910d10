import { GRADE_TYPES, MAX_TITLE_LENGTH, type Grade, type Student } from '../protocol.ts';
import { html, SafeHtml } from './html.ts';
import { pageHead } from '../../shared/pageHead.ts';

const STYLE = `
  :root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2f6fde; --bad: #c53030; --bg: #f5f7fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
  header { background: #1f2933; color: #fff; padding: .8rem 1.5rem; }
  header a { color: #fff; text-decoration: none; font-weight: 600; }
  main { max-width: 52rem; margin: 1.5rem auto; padding: 0 1rem; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1.2rem 1.5rem; margin-bottom: 1.2rem; }
  h1 { font-size: 1.5rem; margin: 0 0 .8rem; }
  h2 { font-size: 1.1rem; margin: 0 0 .8rem; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-weight: 600; font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  a { color: var(--accent); }
  .average { font-size: 2rem; font-weight: 700; margin: 0; }
  .label { margin: 0; }
  .muted { color: var(--muted); }
  .notice { background: #e6f4ea; border: 1px solid #a8d5b5; border-radius: 6px; padding: .6rem .9rem; margin-bottom: 1rem; }
  form .row { display: flex; gap: 1rem; flex-wrap: wrap; align-items: flex-start; }
  form label { display: flex; flex-direction: column; font-weight: 600; font-size: .9rem; gap: .25rem; }
  form input, form select { font: inherit; padding: .4rem .5rem; border: 1px solid #cbd2d9; border-radius: 5px; min-width: 9rem; }
  form .invalid input, form .invalid select { border-color: var(--bad); }
  .field-error, .form-error { color: var(--bad); font-weight: 400; font-size: .85rem; }
  button { font: inherit; font-weight: 600; background: var(--accent); color: #fff; border: 0; border-radius: 5px; padding: .5rem 1.1rem; cursor: pointer; margin-top: 1.45rem; }
  .error h1 { color: var(--bad); }
`;

export function formatAverage(average: number | null): string {
  return average === null ? '–' : average.toFixed(1);
}

function formatScore(score: number): string {
  return Number.isInteger(score) ? String(score) : score.toFixed(2).replace(/0+$/, '');
}

function fullName(student: Pick<Student, 'firstName' | 'lastName'>): string {
  return `${student.firstName} ${student.lastName}`;
}

export interface LayoutOptions {
  /** Reload the page after this many seconds (the "grades is away" page uses it). */
  refreshSeconds?: number;
}

/** `nonce` is the response's CSP nonce (shared/pageHeaders.ts): the inline style needs it. */
export function layout(nonce: string, title: string, body: SafeHtml, options: LayoutOptions = {}): string {
  const head = pageHead({
    nonce,
    title: html`${title} · Teacher portal`.value,
    css: STYLE,
    extraHead: options.refreshSeconds ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}">
`.value : '',
  });
  return html`${new SafeHtml(head)}<body>
<header><a href="/students">Teacher portal</a></header>
<main>
${body}
</main>
</body>
</html>
`.value;
}

export function studentsPage(nonce: string, students: readonly Student[]): string {
  const rows = students.map(
    (student) => html`<tr data-student-id="${student.id}">
      <td><a href="/students/${student.id}">${fullName(student)}</a></td>
      <td class="num">${student.grades.length}</td>
      <td class="num student-average">${formatAverage(student.average)}</td>
    </tr>`,
  );
  return layout(
    nonce,
    'Students',
    html`<section class="card">
  <h1>Students</h1>
  ${
    students.length === 0
      ? html`<p class="muted">No students yet.</p>`
      : html`<table>
    <thead><tr><th>Student</th><th class="num">Grades</th><th class="num">Average</th></tr></thead>
    <tbody>${rows}</tbody>
  </table>`
  }
</section>`,
  );
}

export type GradeField = 'title' | 'type' | 'score';

/** What the add-a-grade form shows: the values typed (kept on an error) and the errors by field. */
export interface GradeFormState {
  values: Record<GradeField, string>;
  errors: Partial<Record<GradeField | 'form', string>>;
}

export const emptyGradeForm = (): GradeFormState => ({ values: { title: '', type: 'Quiz', score: '' }, errors: {} });

function field(state: GradeFormState, name: GradeField, label: string, control: SafeHtml): SafeHtml {
  const error = state.errors[name];
  return html`<label class="${error ? 'invalid' : ''}">${label}
      ${control}
      ${error ? html`<span class="field-error" id="${name}-error">${error}</span>` : ''}
    </label>`;
}

function gradeRow(grade: Grade, highlight: boolean): SafeHtml {
  return html`<tr data-grade-id="${grade.id}"${highlight ? html` class="added"` : ''}>
      <td>${grade.title}</td><td>${grade.type}</td><td class="num">${formatScore(grade.score)}</td>
    </tr>`;
}

export function studentPage(nonce: string, student: Student, form: GradeFormState = emptyGradeForm(), addedGradeId?: number): string {
  const added = addedGradeId === undefined ? undefined : student.grades.find((g) => g.id === addedGradeId);
  const typeOptions = GRADE_TYPES.map((type) => html`<option value="${type}"${form.values.type === type ? html` selected` : ''}>${type}</option>`);
  return layout(
    nonce,
    fullName(student),
    html`<p><a href="/students">← All students</a></p>
${added ? html`<p class="notice" role="status">Added ${added.type.toLowerCase()} “${added.title}” with a score of ${formatScore(added.score)}.</p>` : ''}
<section class="card">
  <h1>${fullName(student)}</h1>
  <p class="muted label">Average</p>
  <p class="average" id="average">${formatAverage(student.average)}</p>
</section>
<section class="card">
  <h2>Grades</h2>
  ${
    student.grades.length === 0
      ? html`<p class="muted">No grades yet.</p>`
      : html`<table id="grades">
    <thead><tr><th>Title</th><th>Type</th><th class="num">Score</th></tr></thead>
    <tbody>${student.grades.map((g) => gradeRow(g, g.id === added?.id))}</tbody>
  </table>`
  }
</section>
<section class="card">
  <h2>Add a grade</h2>
  ${form.errors.form ? html`<p class="form-error" role="alert">${form.errors.form}</p>` : ''}
  <form method="post" action="/students/${student.id}/grades" id="add-grade">
    <div class="row">
      ${field(form, 'title', 'Title', html`<input name="title" value="${form.values.title}" maxlength="${MAX_TITLE_LENGTH}" required>`)}
      ${field(form, 'type', 'Type', html`<select name="type">${typeOptions}</select>`)}
      ${field(form, 'score', 'Score (0–100)', html`<input name="score" type="number" min="0" max="100" step="any" value="${form.values.score}" required>`)}
      <button type="submit">Add grade</button>
    </div>
  </form>
</section>`,
  );
}

export interface ErrorPage {
  status: number;
  title: string;
  explanation: string;
  /** Set for a passing trouble (grades away): the page reloads itself and says so. */
  retrySeconds?: number;
}

export function errorPage(nonce: string, page: ErrorPage): string {
  return layout(
    nonce,
    page.title,
    html`<section class="card error">
  <h1>${page.title}</h1>
  <p>${page.explanation}</p>
  ${page.retrySeconds ? html`<p class="muted">This page tries again every ${page.retrySeconds} seconds.</p>` : ''}
  <p><a href="/students">Back to the students</a></p>
</section>`,
    { refreshSeconds: page.retrySeconds },
  );
}
