/**
 * One dedicated connection per master that LISTENs on a channel and calls back on each notification.
 * A lost connection (a database restart) is re-established with backoff, and the callback is called
 * once more on reconnecting, since notifications sent meanwhile are gone for good.
 */
import pg from 'pg';
import { EqualJitterBackoff } from '../../shared/backoff.ts';

export class PgListener {
  private client?: pg.Client;
  private retry?: NodeJS.Timeout;
  private stopped = false;
  private readonly backoff = new EqualJitterBackoff({ initialMs: 200, maxMs: 5_000 });
  private connected = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly onNotify: () => void,
    private readonly onTrouble: (message: string) => void,
  ) {}

  get listening(): boolean {
    return this.connected;
  }

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client(this.config);
    this.client = client;
    let lost = false;
    const reconnect = (why: string) => {
      if (lost) return;
      lost = true;
      if (this.connected) this.onTrouble(`lost the LISTEN connection (${why}); reconnecting`);
      this.connected = false;
      client.end().catch(() => undefined);
      if (this.stopped) return;
      this.retry = setTimeout(() => void this.connect(), this.backoff.nextDelayMs());
      this.retry.unref();
    };
    client.on('error', (err) => reconnect(err.message));
    client.on('end', () => reconnect('the server closed it'));
    client.on('notification', () => this.onNotify());
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    } catch (err) {
      reconnect((err as Error).message);
      return;
    }
    if (lost || this.stopped) return;
    this.connected = true;
    this.backoff.reset();
    this.onNotify();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.connected = false;
    await this.client?.end().catch(() => undefined);
  }
}
