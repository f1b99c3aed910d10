/**
 * The head every page opens with: doctype, language, charset, viewport, the title, and one inline style that
 * carries the response's CSP nonce (shared/pageHeaders.ts). With `admin`, the style starts with what the
 * operator's pages share (the registry dashboard, the log viewer, the events panel, the login form): type
 * and colours, the live/lost status badge, plain tables; the page's own `css` follows, adding to it and
 * overriding it. `title` and `extraHead` are markup: escape stored text before it goes there.
 */

const ADMIN_CSS = `  :root { font-family: system-ui, sans-serif; color: #1d232a; background: #f6f7f9; }
  body { margin: 0 auto; max-width: 1400px; padding: 1.2rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .6rem; }
  #status { padding: .1rem .5rem; border-radius: 1rem; background: #ddd; }
  #status.live { background: #c9f1d4; color: #145a2a; }
  #status.lost { background: #f8d0d0; color: #7a1414; }
  table { width: 100%; border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  th, td { text-align: left; vertical-align: top; }
  th { background: #eef0f3; font-weight: 600; }
`;

export interface PageHeadOptions {
  nonce: string;
  title: string;
  /** The page's own style rules. */
  css: string;
  /** Start from the operator pages' shared look. */
  admin?: boolean;
  /** More of the head before the title (a refresh meta, say). */
  extraHead?: string;
}

/** Everything up to and including `</head>`; the page goes on with its `<body>`. */
export function pageHead(options: PageHeadOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${options.extraHead ?? ''}<title>${options.title}</title>
<style nonce="${options.nonce}">
${options.admin ? ADMIN_CSS : ''}${options.css}</style>
</head>
`;
}
