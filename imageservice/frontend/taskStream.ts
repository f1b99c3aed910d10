/**
 * Task status for browsers over server-sent events (GET /taskEvents): the master's task.* events, as
 * the events service delivers them here, go to every open page (one stream per page: a browser opens
 * few connections to one host, and a page follows many uploads). Each stream opens with `status`
 * {live}: whether an events service is up; while it is not, the page polls /isReady as before.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { SseHub } from '../../shared/sseHub.ts';
import type { EventHandler } from '../../events/client.ts';

export const TASK_EVENTS = 'task.*';

/** What the page gets per event: `task` {id, state, op, attempts, error}. */
export class TaskStream {
  private readonly hub: SseHub<null>;

  constructor(private readonly eventsUp: () => boolean, maxClients = 256) {
    this.hub = new SseHub<null>({
      maxClients,
      maxQueuedBytes: 1024 * 1024,
      replayBytes: 256 * 1024,
      heartbeatMs: 15_000,
      retryMs: 2000,
      epoch: randomBytes(4).toString('hex'),
      filterKey: () => 'all',
      greet: () => [this.status()],
    });
  }

  private status(): { event: string; data: string } {
    return { event: 'status', data: JSON.stringify({ live: this.eventsUp() }) };
  }

  /** The handler for task.* deliveries. */
  readonly handler: EventHandler = (event) => {
    const payload = event.payload as { id?: unknown } | null;
    if (typeof payload?.id !== 'number') return;
    this.hub.publish([{ event: 'task', data: JSON.stringify(payload) }]);
  };

  /** Tells every open page when the events service comes or goes (it then stops or starts polling). */
  eventsChanged(): void {
    const { event, data } = this.status();
    this.hub.publish([{ event, data }]);
  }

  open(req: IncomingMessage, res: ServerResponse): void {
    this.hub.open(req, res, null);
  }

  close(): void {
    this.hub.close();
  }
}
