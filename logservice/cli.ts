import type { Command } from 'commander';
import type { LogEntry, LogQueryResult } from './protocol.ts';
import { CliError, intOption, jsonText, printable, printJson, type CliContext } from '../shared/cli.ts';
import { readEventStream } from '../shared/sse.ts';

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
    .option('--service <names>', 'only these services (comma-separated)')
    .option('--level <levels>', 'only these levels (comma-separated)')
    .option('--request-id <id>', "one request's lines, from every service")
    .option('-q, --q <text>', 'lines containing this text');
}

/** `logs query | tail`: the log service from a terminal. */
export function logsCommands(program: Command, context: () => CliContext): void {
  const logs = program.command('logs').description('the platform\'s collected log lines');

  withFilters(logs.command('query'))
    .description('matching lines, newest first')
    .option('--since <when>', 'ISO date, epoch ms, or a duration such as 15m, 2h, 7d')
    .option('--until <when>', 'ISO date, epoch ms, or a duration')
    .option('--limit <n>', 'at most this many lines', '100')
    .action(async (opts: FilterOptions & { limit: string }) => {
      const ctx = context();
      const limit = intOption(opts.limit, '--limit', 1, 5000);
      const http = await ctx.service('log');
      const { data } = await http.get<LogQueryResult>('/logs', { params: { ...filterParams(opts), limit } });
      if (ctx.json) return printJson(ctx, data);
      if (data.entries.length === 0) return ctx.out('no matching lines');
      for (const entry of data.entries) ctx.out(line(entry));
      if (data.truncated) ctx.out('(older files were not all searched; narrow the filters or use --since)');
    });

  withFilters(logs.command('tail'))
    .description('follow new lines live (Ctrl-C to stop)')
    .action(async (opts: FilterOptions) => {
      const ctx = context();
      const http = await ctx.service('log');
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
        );
      } catch (err) {
        throw new CliError(`lost the log stream: ${(err as Error).message}`);
      }
    });
}
