/** `images prune [--older-than 7d]`: a retention run at the master now (imageservice/master/retention.ts). */
import type { Command } from 'commander';
import { MasterClient } from './master/client.ts';
import { CliError, printJson, type CliContext } from '../shared/cli.ts';
import { parseDuration } from '../shared/housekeeping.ts';

export function pruneCommand(images: Command, context: () => CliContext): void {
  images
    .command('prune')
    .description('remove done and failed tasks, and their images, older than the retention')
    .option('--older-than <age>', "7d, 12h, 30m, 45s… (default: the master's IMAGE_RETENTION)")
    .action(async (opts: { olderThan?: string }, command: Command) => {
      const ctx = context();
      if (opts.olderThan !== undefined && parseDuration(opts.olderThan) === undefined) {
        throw new CliError(`--older-than must be a duration such as 7d, 12h, 30m or 45s, got "${opts.olderThan}"`);
      }
      // The root's --token (REGISTRY_TOKEN): the master asks for it, as the registry does, when it is set.
      const { token } = command.optsWithGlobals<{ token?: string }>();
      const result = await new MasterClient(await ctx.service('imagemaster')).prune(opts.olderThan, token);
      if (ctx.json) return printJson(ctx, result);
      const age = opts.olderThan ?? wholeAge(result.olderThanMs);
      const orphans = result.removed.orphans ? `, and ${result.removed.orphans} images no task owned` : '';
      ctx.out(`removed ${result.removed.tasks} tasks and ${result.removed.images} images (finished more than ${age} ago)${orphans}`);
    });
}

/** 604800000 as "7d", 5400000 as "90m": the largest unit that divides it. */
function wholeAge(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
