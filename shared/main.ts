import type { Logger } from 'winston';

/**
 * Runs a service's main: starts it, and on SIGINT/SIGTERM stops it once and exits 0.
 * A failure to start exits 1 with a one-line reason, never a stack trace.
 */
export async function runMain(
  name: string,
  start: () => Promise<{ stop(): Promise<void>; logger?: Logger }>,
): Promise<void> {
  let running: Awaited<ReturnType<typeof start>>;
  try {
    running = await start();
  } catch (err) {
    process.stderr.write(`${name}: could not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.logger?.info(`${signal}: shutting down`);
    try {
      await running.stop();
      process.exit(0);
    } catch (err) {
      process.stderr.write(`${name}: error while stopping: ${(err as Error).message}\n`);
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
