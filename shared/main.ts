import type { Logger } from 'winston';

/**
 * Runs a service's main: starts it, and on SIGINT/SIGTERM stops it once and exits 0.
 * The signal handlers go in before start-up, so a signal that arrives while the service is
 * starting (or right after it says it listens) still ends in a clean stop.
 * A failure to start exits 1 with a one-line reason, never a stack trace.
 */
export async function runMain(
  name: string,
  start: () => Promise<{ stop(): Promise<void>; logger?: Logger }>,
): Promise<void> {
  let stopping = false;
  // Async, so a bad setting thrown while the options are read is a start-up failure like any other (no stack trace).
  const starting = (async () => start())();
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    let running: Awaited<typeof starting>;
    try {
      running = await starting;
    } catch {
      return; // the start-up failure below reports and exits
    }
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
  try {
    await starting;
  } catch (err) {
    process.stderr.write(`${name}: could not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
