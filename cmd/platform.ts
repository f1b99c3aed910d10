import { Launcher } from '../platform/launcher.ts';
import { launchOptions, UsageError } from '../platform/config.ts';

let launcher: Launcher;
try {
  launcher = new Launcher(launchOptions());
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`platform: ${err.message}\n`);
  process.exit(2);
}
process.on('SIGINT', () => launcher.stop('SIGINT'));
process.on('SIGTERM', () => launcher.stop('SIGTERM'));
await launcher.run();
process.exit(0);
