import type { Command } from 'commander';
import { CliError, jsonText, printable, printJson, type CliContext } from '../shared/cli.ts';
import { EventsClient } from './client.ts';
import { patternProblem, topicProblem } from './topics.ts';
import type { EventEnvelope } from './protocol.ts';
import { EVENTS_SERVICE } from './config.ts';

function line(event: EventEnvelope): string {
  const payload = typeof event.payload === 'string' && event.contentType ? event.payload : JSON.stringify(event.payload);
  // Payloads are anyone's text: their control characters are shown as escapes, never sent to the terminal.
  return printable(`${event.time} ${event.topic} #${event.seq} (id ${event.id}) ${payload}`);
}

async function eventsClient(ctx: CliContext): Promise<EventsClient> {
  return new EventsClient(await ctx.service(EVENTS_SERVICE));
}

/** `events publish | tail | subscribers`: the events service from a terminal. */
export function eventsCommands(program: Command, context: () => CliContext): void {
  const events = program.command('events').description('events between services: publish, follow, subscribers');

  events
    .command('publish <topic> <json>')
    .description('publish one event (the payload is JSON, e.g. \'{"id":7}\' or \'"text"\')')
    .action(async (topic: string, json: string) => {
      const ctx = context();
      const problem = topicProblem(topic);
      if (problem) throw new CliError(`topic ${problem}`);
      let payload: unknown;
      try {
        payload = JSON.parse(json);
      } catch (err) {
        throw new CliError(`the payload is not JSON (${(err as Error).message}); quote text as '"text"'`);
      }
      const answer = await (await eventsClient(ctx)).publish({ topic, payload });
      if (ctx.json) return printJson(ctx, answer.events[0]);
      const [event] = answer.events;
      ctx.out(`published ${event.topic} #${event.seq} (id ${event.id})`);
    });

  events
    .command('tail')
    .description('follow events as they are published (Ctrl-C to stop)')
    .option('--topic <patterns>', 'only these topics (comma-separated; "*" is one word, a final ">" the rest)')
    .action(async (opts: { topic?: string }) => {
      const ctx = context();
      const topics = opts.topic?.split(',').map((t) => t.trim()).filter(Boolean);
      for (const pattern of topics ?? []) {
        const problem = patternProblem(pattern);
        if (problem) throw new CliError(`--topic ${pattern}: ${problem}`);
      }
      const client = await eventsClient(ctx);
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      try {
        await client.tail(
          (event) => ctx.out(ctx.json ? jsonText(event) : line(event)),
          abort.signal,
          topics,
          (dropped) => ctx.out(`(${dropped} event(s) not shown: the tail fell behind)`),
        );
      } catch (err) {
        throw new CliError(`lost the event stream: ${(err as Error).message}`);
      }
    });

  events
    .command('subscribers')
    .description('every subscriber: what it wants, its state and its queue')
    .action(async () => {
      const ctx = context();
      const { subscribers } = await (await eventsClient(ctx)).subscribers();
      if (ctx.json) return printJson(ctx, subscribers);
      if (subscribers.length === 0) return ctx.out('no subscribers');
      const rows = subscribers.map((s) => [
        s.kind,
        s.mode,
        s.target,
        s.topics.join(','),
        s.state,
        s.queued,
        s.delivered,
        s.dropped,
        s.retries,
        s.lastError ?? '',
      ]);
      ctx.table(['kind', 'mode', 'target', 'topics', 'state', 'queued', 'delivered', 'dropped', 'retries', 'last error'], rows);
    });
}
