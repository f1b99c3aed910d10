import { Command, Option } from 'commander';
import { colourWanted, createContext, describeError, printJson, type CliContext } from '../shared/cli.ts';
import { DEFAULT_REGISTRY_URL } from '../shared/config.ts';
import { versionInfo } from '../shared/version.ts';
import { servicesCommands } from '../registry/cli.ts';
import { gradesCommands } from '../grades/cli.ts';
import { logsCommands } from '../logservice/cli.ts';
import { imageCommands } from '../imageservice/cli.ts';
import { eventsCommands } from '../events/cli.ts';
import { platformCommands } from './psCommand.ts';

/** The `switchboard` command: every service's commands, each service found through the registry. */
export function cliProgram(): Command {
  const program = new Command('switchboard')
    .description('Drive the Switchboard platform from a terminal; every service is found through the registry')
    .version(versionInfo().version, '-V, --version', 'print the version')
    .addOption(new Option('--registry <url>', 'the registry').env('REGISTRY_URL').default(DEFAULT_REGISTRY_URL))
    .addOption(new Option('--token <token>', 'bearer token for changes').env('REGISTRY_TOKEN'))
    .option('--json', 'print JSON instead of tables')
    .option('--no-color', 'no colour, even on a terminal (NO_COLOR=1 does the same)')
    .configureOutput({ outputError: (text, write) => write(text) });

  const context = (): CliContext => {
    const opts = program.opts<{ registry: string; token?: string; json?: boolean; color: boolean }>();
    return createContext({ registryUrl: opts.registry, token: opts.token, json: Boolean(opts.json), colour: colourWanted(process.stdout, opts.color) });
  };
  // A command as well as --version: `npx switchboard --version` is npx's own flag (it prints npm's version).
  program
    .command('version')
    .description('the version and build of this CLI')
    .action(() => {
      const ctx = context();
      const info = versionInfo();
      if (ctx.json) return printJson(ctx, info);
      ctx.out(`switchboard ${info.version}, build ${info.build}`);
    });
  servicesCommands(program, context);
  gradesCommands(program, context);
  logsCommands(program, context);
  imageCommands(program, context);
  eventsCommands(program, context);
  platformCommands(program, context);
  pointToHelp(program);
  return program;
}

/** A usage mistake prints its one line and where to read more, not the whole usage (which hides the line). */
function pointToHelp(command: Command, path: string[] = []): void {
  const words = [...path, command.name()];
  command.showHelpAfterError(`(see "${words.join(' ')} --help" for usage)`);
  for (const sub of command.commands) pointToHelp(sub, words);
}

/** Runs one command line; a failure is one line on stderr and exit code 1, never a stack trace. */
export async function runCli(argv: string[] = process.argv): Promise<void> {
  const program = cliProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.stderr.write(`error: ${describeError(err, program.opts<{ registry: string }>().registry)}\n`);
    process.exitCode = 1;
  }
}
