#!/usr/bin/env node
// The `switchboard` command (package.json "bin"): the admin CLI, run through tsx in this process, so that
// `npx switchboard --json … | jq` gets only the CLI's own output (npm run prints its banner on stdout).
import { register } from 'tsx/esm/api';

register();
await import(new URL('../cmd/cli.ts', import.meta.url).href);
