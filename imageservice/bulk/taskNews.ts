/**
 * The master's task events (task.done, task.failed) through the events service's stream, where one is up: each
 * wakes the job's follower at once, so its counts move as tasks end instead of at its next poll. Without an
 * events service, or when the stream drops, the follower polls as before: the news only ever makes it sooner.
 */
import type { CliContext } from '../../shared/cli.ts';
import { EventsClient } from '../../events/client.ts';
import { EVENTS_SERVICE } from '../../events/config.ts';

export class TaskNews {
  private readonly abort = new AbortController();
  private wake: () => void = () => {};
  /** Whether the stream is open (the follower then polls less often). */
  live = false;

  /** Opens the stream in the background; `onLive` is told when it opens and when it drops. */
  start(ctx: CliContext, onLive: (live: boolean) => void): void {
    void (async () => {
      let client: EventsClient;
      try {
        client = new EventsClient(await ctx.service(EVENTS_SERVICE));
      } catch {
        return; // no events service: polling alone
      }
      this.live = true;
      onLive(true);
      try {
        await client.tail(() => this.wake(), this.abort.signal, ['task.done', 'task.failed']);
      } catch {
        // A dropped stream: the polls carry on.
      }
      if (!this.abort.signal.aborted) onLive(false);
      this.live = false;
    })();
  }

  /** Waits `ms`, or less when a task ends meanwhile. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  stop(): void {
    this.abort.abort();
    this.wake();
  }
}
