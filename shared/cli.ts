/** The CLI kit: a context that finds services through the registry, safe printing, tables and flag parsing. */
import axios, { type AxiosInstance } from 'axios';
import { styleText } from 'node:util';
import { RegistryClient, RegistryError } from '../registry/client.ts';
import { NoProviderError } from './serviceClient.ts';
import { ApiError, classifyUpstream } from './apiError.ts';
import { parseWholeNumber } from './config.ts';

/** A mistake the person can fix: printed as one line, exit code 1. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
// C0, DEL and C1: each can move the cursor, end a line, retitle the window or start an escape sequence.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text read from a service, made safe for a terminal: every control character is shown as an escape
 * (\n, \r, \t, \x1b, \u009b), so a stored line can neither forge a line of its own nor drive the terminal.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (ch) => {
    const code = ch.charCodeAt(0);
    return NAMED_ESCAPES[ch] ?? (code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
}

/** JSON for a terminal: JSON.stringify escapes C0, and this escapes DEL and C1 too (the same value to a parser). */
export function jsonText(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? 'null').replace(/[\u007f-\u009f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface CliContext {
  registry: RegistryClient;
  json: boolean;
  /** Whether state words are coloured (a terminal that wants colour, and no --no-color). */
  colour: boolean;
  /** Prints lines; a control character other than the line breaks between them is escaped (printable). */
  out: (line: string) => void;
  /** Prints a table (see table()); with colour, the words in a column named "state" are coloured. */
  table: (header: string[], rows: (string | number | undefined)[][]) => void;
  /** An axios instance for an up instance of the named service, found through the registry. */
  service(name: string): Promise<AxiosInstance>;
}

export function createContext(options: {
  registryUrl: string;
  token?: string;
  json: boolean;
  colour?: boolean;
  write?: (text: string) => void;
}): CliContext {
  const registry = new RegistryClient({ registryUrl: options.registryUrl, token: options.token, timeoutMs: 5000 });
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const colour = options.colour ?? false;
  return {
    registry,
    json: options.json,
    colour,
    // The last guard: fields from services are escaped where they are put in a line, so their own \n can't split it.
    out: (text) => write(`${text.split('\n').map(printable).join('\n')}\n`),
    // table() escapes every cell itself, so only our own colour codes reach the terminal.
    table: (header, rows) => write(`${table(header, rows, colour ? paintColumn(header, 'state', stateColour) : undefined)}\n`),
    async service(name: string) {
      const urls = (await registry.providers([name]))[name] ?? [];
      if (urls.length === 0) throw new NoProviderError(name);
      // The read side may ask for the token too (shared/readAccess.ts): it goes on every call, as the registry client does.
      const headers = options.token ? { Authorization: `Bearer ${options.token}` } : {};
      return axios.create({ baseURL: urls[Math.floor(Math.random() * urls.length)], timeout: 30_000, headers });
    },
  };
}

/**
 * Whether to colour what goes to this stream: a terminal whose hasColors() says so (it honours NO_COLOR,
 * NODE_DISABLE_COLORS, FORCE_COLOR and TERM=dumb), unless --no-color was given. Pipes and files never get colour.
 */
export function colourWanted(stream: NodeJS.WriteStream, flag = true): boolean {
  return flag && stream.isTTY === true && typeof stream.hasColors === 'function' && stream.hasColors();
}

// The states of instances, tasks, subscribers and the launcher's processes: what is well, what is not, what is on its way.
const STATE_COLOURS: Record<string, 'green' | 'red' | 'yellow'> = {
  up: 'green',
  done: 'green',
  ok: 'green',
  down: 'red',
  failed: 'red',
  dropped: 'red',
  stopped: 'red',
  failing: 'yellow',
  running: 'yellow',
  restarting: 'yellow',
  starting: 'yellow',
  stopping: 'yellow',
};

/** A state word in its colour (up and done green, down, failed and stopped red, the ones in between yellow); others as they are. */
export function stateColour(word: string): string {
  const colour = STATE_COLOURS[word];
  return colour ? styleText(colour, word) : word;
}

function paintColumn(header: string[], name: string, paint: (cell: string) => string): (cell: string, col: number) => string {
  const wanted = header.indexOf(name);
  return (cell, col) => (col === wanted ? paint(cell) : cell);
}

/** Turns any failure into one line a person can act on (never a stack trace, never a raw control character). */
export function describeError(err: unknown, registryUrl: string): string {
  return printable(errorWords(err, registryUrl));
}

function errorWords(err: unknown, registryUrl: string): string {
  if (err instanceof CliError) return err.message;
  if (err instanceof RegistryError) {
    if (err.unreachable) return `cannot reach the registry at ${registryUrl}: is it running? (set REGISTRY_URL or --registry)`;
    return `the registry refused: ${err.message}`;
  }
  // Another typed client's error (the master's, grades') already says who answered what.
  if (err instanceof ApiError) return err.message;
  const failure = classifyUpstream(err);
  if (!failure) return (err as Error | undefined)?.message ?? String(err);
  switch (failure.kind) {
    case 'no_provider':
      return `${failure.message}. Is it running? (npm start runs everything)`;
    case 'answered':
      return `${failure.target ?? 'the service'} answered ${failure.status}: ${failure.message ?? (err as Error).message}`;
    default:
      return `${failure.target ?? 'the service'} is unreachable (${failure.reason})`;
  }
}

/**
 * A plain text table with aligned columns; cells are escaped (printable), so any cell may come from a service.
 * `paint` may wrap a cell in colour codes: it is applied after the widths are measured, so columns stay aligned.
 */
export function table(header: string[], rows: (string | number | undefined)[][], paint?: (cell: string, col: number) => string): string {
  const all = [header, ...rows.map((row) => row.map((cell) => (cell === undefined ? '' : printable(String(cell)))))];
  const widths = header.map((_, col) => Math.max(...all.map((row) => row[col].length)));
  const line = (row: string[], painted: boolean) =>
    row
      .map((cell, col) => (painted && paint ? paint(cell, col) : cell) + ' '.repeat(widths[col] - cell.length))
      .join('  ')
      .trimEnd();
  return [line(all[0], false), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map((row) => line(row, true))].join('\n');
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(jsonText(value, 2));
}

/** Parses a whole number from a flag, or says which flag is wrong. */
export function intOption(value: string, flag: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = parseWholeNumber(value, min, max);
  if (n === undefined) throw new CliError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

export function ago(iso?: string): string {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return `${Math.round(s)}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
