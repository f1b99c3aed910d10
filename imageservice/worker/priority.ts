/**
 * The worker's CPU priority. Transforms are batch work: on a machine the worker shares with the
 * services that answer uploads (storage, the master, the frontend), a niced worker lets those take a
 * core the moment they need one, and still has every core that nobody else wants. On Linux a nice
 * value belongs to a thread and a new thread starts with its creator's, so every thread there is now
 * is lowered, and the pool's and libvips's threads, made later, start lowered.
 */
import fs from 'node:fs';
import os from 'node:os';

/** Lowers this process's threads to `nice` (0-19; 0 leaves them alone); a message when it could not. */
export function lowerPriority(nice: number): string | undefined {
  if (nice === 0) return undefined;
  const threads = process.platform === 'linux' ? fs.readdirSync('/proc/self/task').map(Number) : [0];
  for (const thread of threads) {
    try {
      if (os.getPriority(thread) < nice) os.setPriority(thread, nice);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') continue; // the thread ended meanwhile
      return `could not lower the worker's CPU priority to nice ${nice}: ${(err as Error).message}`;
    }
  }
  return undefined;
}
