import path from 'node:path';
import { Option, type Command } from 'commander';
import { CliError, printJson, type CliContext } from '../shared/cli.ts';
import { currentStatus, statusFile, uptime } from '../shared/platformStatus.ts';

/**
 * `platform ps`: the processes `npm start` runs, as `docker compose ps` shows containers. Read from the file the
 * launcher keeps under its data directory, so it answers when the registry does not.
 */
export function platformCommands(program: Command, context: () => CliContext): void {
  program
    .command('platform')
    .description('the processes npm start runs')
    .command('ps')
    .description('each process: service, pid, state, restarts, uptime, last exit code')
    .addOption(new Option('--data-dir <dir>', 'the data directory npm start was given').env('DATA_DIR').default('./data'))
    .action((opts: { dataDir: string }) => {
      const ctx = context();
      const file = statusFile(path.resolve(opts.dataDir));
      const status = currentStatus(file);
      if (!status) throw new CliError(`no platform has run with the data directory ${opts.dataDir} (no ${file}); give the one npm start was given with --data-dir`);
      if (ctx.json) printJson(ctx, status);
      else {
        const rows = status.processes.map((p) => [p.name, p.service, p.pid ?? '', p.state, p.restarts, uptime(p), p.lastExitCode ?? '']);
        ctx.table(['name', 'service', 'pid', 'state', 'restarts', 'uptime', 'last exit'], rows);
      }
      // Printed, then said: what is shown is only what the launcher last knew.
      if (!status.launcherRunning) throw new CliError(`the launcher (pid ${status.launcherPid}) is not running; this is what it last wrote`);
    });
}
