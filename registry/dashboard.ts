/** The registry's dashboard page (GET /). */
export function dashboardPage(): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Switchboard registry</title></head>
<body><h1>Switchboard registry</h1><p>See <a href="/services">/services</a>.</p></body></html>`;
}
