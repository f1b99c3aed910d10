/**
 * The login form a guarded page shows (shared/readAccess.ts): one field for the token, posted to /login on the
 * same service. `nonce` is the response's CSP nonce (shared/pageHeaders.ts): the style carries it; there is no script.
 */
import { pageHead } from './pageHead.ts';

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

export interface LoginPageOptions {
  nonce: string;
  /** The service whose pages these are (shown in the title). */
  service: string;
  /** Where to go after logging in (a path on this service). */
  next: string;
  /** Why the last attempt was refused, if one was. */
  problem?: string;
}

const LOGIN_CSS = `  main { max-width: 26rem; margin: 4rem auto; padding: 1.4rem; background: #fff; border-radius: .5rem; box-shadow: 0 1px 3px rgba(0,0,0,.1); }
  h1 { font-size: 1.25rem; margin: 0 0 .8rem; }
  p { color: #5b6570; font-size: .9rem; }
  label { display: flex; flex-direction: column; gap: .3rem; font-size: .85rem; color: #5b6570; }
  input, button { font: inherit; padding: .45rem .6rem; border: 1px solid #c8cdd3; border-radius: .3rem; }
  button { margin-top: .9rem; background: #1f5fbf; color: #fff; border-color: #1f5fbf; cursor: pointer; }
  .problem { color: #7a1414; background: #f8d0d0; padding: .4rem .6rem; border-radius: .3rem; }
`;

export function loginPage(options: LoginPageOptions): string {
  const service = escapeHtml(options.service);
  return `${pageHead({ nonce: options.nonce, title: `Log in: ${service}`, admin: true, css: LOGIN_CSS })}<body>
<main>
  <h1>Switchboard ${service}</h1>
  <p>This page needs the operator's token (ADMIN_TOKEN, or REGISTRY_TOKEN when no ADMIN_TOKEN is set).</p>
  ${options.problem ? `<p class="problem" role="alert">${escapeHtml(options.problem)}</p>` : ''}
  <form id="login" method="post" action="/login">
    <input type="hidden" name="next" value="${escapeHtml(options.next)}">
    <label>token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
    <button type="submit">Log in</button>
  </form>
</main>
</body>
</html>`;
}
