import type { Command } from 'commander';
import type { RegistryEvent } from './protocol.ts';
import { CliError, ago, jsonText, printable, printJson, type CliContext } from '../shared/cli.ts';

/** `services list | watch | deregister`: the registry from a terminal. */
export function servicesCommands(program: Command, context: () => CliContext): void {
  const services = program.command('services').description('registered services and instances');

  services
    .command('list')
    .description('every instance, with state and last check')
    .option('--name <name>', 'only this service')
    .action(async (opts: { name?: string }) => {
      const ctx = context();
      const instances = await ctx.registry.list(opts.name ? [opts.name] : undefined);
      // A name with no instance is a mistake or an outage: said on stderr with exit 1, so a script can tell.
      if (opts.name && instances.length === 0) throw new CliError(`no instance of "${opts.name}" is registered`);
      if (ctx.json) return printJson(ctx, instances);
      if (instances.length === 0) return ctx.out('no services are registered');
      const rows = instances
        .sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.serviceURL.localeCompare(b.serviceURL))
        .map((i) => [
          i.serviceName,
          i.state,
          i.serviceURL,
          i.lastCheckAt ? ago(i.lastCheckAt) : i.leaseExpiresAt ? 'lease' : '',
          i.lastLatencyMs === undefined ? '' : `${i.lastLatencyMs} ms`,
          i.consecutiveFailures,
          i.state === 'down' && i.downSince ? `${ago(i.downSince)}${i.downReason ? ` ${i.downReason.code}` : ''}` : '',
          i.restarts ?? 0,
          i.instanceId,
        ]);
      ctx.table(['service', 'state', 'url', 'checked', 'latency', 'failures', 'down since', 'restarts', 'instance'], rows);
    });

  services
    .command('watch')
    .description('follow registrations and state changes live (Ctrl-C to stop)')
    .option('--name <name>', 'only this service')
    .action(async (opts: { name?: string }) => {
      const ctx = context();
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      const print = (event: RegistryEvent) => {
        if (ctx.json) return ctx.out(jsonText(event));
        const time = new Date().toISOString().slice(11, 19);
        if (event.type === 'snapshot') {
          ctx.out(`${time} ${event.instances.length} instance(s) registered`);
          for (const i of event.instances) ctx.out(`${time}   ${printable(i.serviceName).padEnd(14)} ${printable(i.state).padEnd(4)} ${printable(i.serviceURL)}`);
        } else if (event.type !== 'checked') {
          const i = event.instance;
          const reason = event.type === 'down' && (i.downReason || i.lastError) ? ` (${printable(i.downReason ? `${i.downReason.code}: ${i.downReason.message}` : i.lastError!)})` : '';
          ctx.out(`${time} ${printable(event.type).padEnd(12)} ${printable(i.serviceName).padEnd(14)} ${printable(i.serviceURL)}${reason}`);
        }
      };
      await ctx.registry.watch(print, abort.signal, opts.name ? [opts.name] : undefined);
    });

  services
    .command('deregister <urlOrId>')
    .description('remove an instance by its URL or instance id')
    .action(async (target: string) => {
      const ctx = context();
      const { deregistered } = await ctx.registry.deregister(target);
      if (ctx.json) return printJson(ctx, deregistered);
      ctx.out(`deregistered ${printable(deregistered.serviceName)} at ${printable(deregistered.serviceURL)} (${printable(deregistered.instanceId)})`);
    });
}
