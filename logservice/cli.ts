import type { Command } from 'commander';
import type { AxiosInstance } from 'axios';
import { LEVELS, type LogEntry, type LogLabels, type LogQueryResult } from './protocol.ts';
import { CliError, intOption, jsonText, printable, printJson, type CliContext } from '../shared/cli.ts';
import { EventStreamError, readEventStream } from '../shared/sse.ts';
import { authorizationOf } from '../shared/auth.ts';

interface FilterOptions {
  service?: string;
  level?: string;
  requestId?: string;
  q?: string;
  since?: string;
  until?: string;
}

function filterParams(opts: FilterOptions): Record<string, string> {
  const params: Record<string, string> = {};
  if (opts.service) params.service = opts.service;
  if (opts.level) params.level = opts.level;
  if (opts.requestId) params.requestId = opts.requestId;
  if (opts.q) params.q = opts.q;
  if (opts.since) params.since = opts.since;
  if (opts.until) params.until = opts.until;
  return params;
}

/** One entry on one line: every field is escaped, so a message can't end the line and forge another. */
function line(entry: LogEntry): string {
  const [time, level, service, message, requestId] = [entry.time, entry.level, entry.service, entry.message, entry.requestId].map((v) => printable(String(v ?? '')));
  return `${time} ${level.padEnd(5)} [${service}]${requestId ? ` (${requestId})` : ''} ${message}`;
}

function withFilters(command: Command): Command {
  return command
    .option('--service <names>', 'only these services (comma-separated; `logs labels` lists them)')
    .option('--level <level>', `this level and worse (${LEVELS.join(', ')}): warn means warn and error`)
    .option('--request-id <id>', "one request's lines, from every service (its first characters will do, as shown)")
    .option('-q, --q <text>', 'lines containing this text');
}

/**
 * On stderr (stdout stays the answer): which of the named services have no lines, and which do. The
 * unknown ones are the query's answer (unknownServices), or for a tail, those not in GET /logs/labels.
 */
async function noteUnknown(http: AxiosInstance, named: string | undefined, unknown?: string[]): Promise<void> {
  if (!named && !unknown) return;
  let services: string[] | undefined;
  try {
    services = (await http.get<LogLabels>('/logs/labels')).data.services;
  } catch {
    // the note stands without the list
  }
  unknown ??= services ? named!.split(',').map((n) => n.trim()).filter((n) => n && !services!.includes(n)) : [];
  if (unknown.length === 0) return;
  const names = unknown.map((name) => `"${name}"`).join(', ');
  const known = services ? `; the services with lines are: ${services.join(', ') || 'none yet'}` : '';
  process.stderr.write(`${printable(`no lines from service ${names}${known}`)}\n`);
}

/** The message of a JSON error body at the end of a stream's refusal ("… answered 400: {"error":…}"). */
function refusalOf(text: string): string | undefined {
  const body = /answered \d+: (\{.*\})$/s.exec(text)?.[1];
  try {
    return body ? (JSON.parse(body) as { error?: { message?: string } }).error?.message : undefined;
  } catch {
    return undefined;
  }
}

/** `logs query | tail`: the log service from a terminal. */
export function logsCommands(program: Command, context: () => CliContext): void {
  const logs = program.command('logs').description('the platform\'s collected log lines');

  withFilters(logs.command('query'))
    .description('the newest matching lines, in time order (the newest last)')
    .option('--since <when>', 'ISO date, epoch ms, or a duration such as 15m, 2h, 7d')
    .option('--until <when>', 'ISO date, epoch ms, or a duration')
    .option('--limit <n>', 'at most this many lines', '100')
    .action(async (opts: FilterOptions & { limit: string }) => {
      const ctx = context();
      const limit = intOption(opts.limit, '--limit', 1, 5000);
      const http = await ctx.service('log');
      const { data } = await http.get<LogQueryResult>('/logs', { params: { ...filterParams(opts), limit } });
      if (data.unknownServices?.length) await noteUnknown(http, opts.service, data.unknownServices);
      if (ctx.json) return printJson(ctx, data);
      if (data.entries.length === 0) return ctx.out('no matching lines');
      for (const entry of data.entries) ctx.out(line(entry));
      if (data.truncated) ctx.out('(older files were not all searched; narrow the filters or use --since)');
    });

  logs
    .command('labels')
    .description('the services that have lines, and the levels')
    .action(async () => {
      const ctx = context();
      const { data } = await (await ctx.service('log')).get<LogLabels>('/logs/labels');
      if (ctx.json) return printJson(ctx, data);
      ctx.out(`services: ${data.services.join(', ') || '(none yet)'}${data.partial ? ' (older files not read)' : ''}`);
      ctx.out(`levels:   ${data.levels.join(', ')}`);
    });

  withFilters(logs.command('tail'))
    .description('follow new lines live (Ctrl-C to stop)')
    .action(async (opts: FilterOptions) => {
      const ctx = context();
      const http = await ctx.service('log');
      await noteUnknown(http, opts.service);
      const query = new URLSearchParams(filterParams(opts)).toString();
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      try {
        await readEventStream(
          `${http.defaults.baseURL}/logs/stream${query ? `?${query}` : ''}`,
          (event) => {
            if (event.event !== 'message') return;
            const entry = JSON.parse(event.data) as LogEntry;
            ctx.out(ctx.json ? jsonText(entry) : line(entry));
          },
          abort.signal,
          undefined,
          authorizationOf(http),
        );
      } catch (err) {
        const refusal = err instanceof EventStreamError && err.phase === 'status' ? refusalOf(err.message) : undefined;
        if (refusal) throw new CliError(`the log service refused the tail (${err instanceof EventStreamError ? err.status : ''}): ${refusal}`);
        throw new CliError(`lost the log stream: ${(err as Error).message}`);
      }
    });
}
