/**
 * Server-sent events to many clients in bounded memory (the registry's stream, the log tail). A client
 * with more than maxQueuedBytes unread is cut off with a `disconnect` event; with Last-Event-ID it
 * resumes from the recent events held, or is greeted afresh (a snapshot). Each event is encoded once per
 * group of clients with equal filters. One timer beats for all clients and sends coalesced summaries.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.ts';
import { encodeEvent, HEADERS, HEARTBEAT } from './sseWire.ts';

export interface SseEvent<F> {
  /** The event's name; unnamed events arrive as "message". */
  event?: string;
  data: string | (() => string); // a function is only called when some client may receive the event
  /** Ids given must increase (the log tail's are its seqs); by default the next number. */
  id?: number;
  /** Which clients get it; by default all. */
  match?: (filter: F) => boolean;
}

/** What a greeting knows of a client that connected and can't resume (its events are gone, or it is new). */
export interface SseOpening<F> {
  filter: F;
  /** The Last-Event-ID the client sent, when it is one of this hub's. */
  lastEventId?: number;
  /** Events after lastEventId that are no longer held (of every filter), when known. */
  missed?: number;
}

export interface SseHubOptions<F> {
  maxClients: number;
  /** Bytes a client may have waiting (beyond its greeting) before it is cut off. */
  maxQueuedBytes: number;
  /** Bytes of recent events held for clients that reconnect with Last-Event-ID. */
  replayBytes: number;
  heartbeatMs: number;
  /** The least time between two summaries of one name (default 1 s). */
  summaryMs?: number;
  /** The reconnect delay sent to clients (the `retry:` field; default 1 s). */
  retryMs?: number;
  /** How long a client that was cut off has to read the reason before its socket is destroyed. */
  drainMs?: number;
  /** Prefixed to ids ("<epoch>-<n>"), so an id from an earlier process is not taken for one of ours. */
  epoch?: string;
  /** Clients whose filters have equal keys share the encoding of each event. */
  filterKey?: (filter: F) => string;
  /** The first events a new client gets (a snapshot, a notice of lines missed). */
  greet?: (opening: SseOpening<F>) => { event: string; data: string }[];
  /**
   * When greetings depend on the filter alone (a snapshot): one is reused for this long, followed by the
   * events published since it was made, so clients that connect while things change share its bytes
   * instead of each taking a snapshot of its own moment. Unset: a greeting is reused only until the next event.
   */
  greetingMaxAgeMs?: number;
}

type Held<F> = Pick<SseEvent<F>, 'match'> & { id: number; bytes: Buffer };

interface Group<F> {
  key: string | symbol;
  filter: F;
  clients: Set<Client<F>>;
  greeting?: { id: number; parts: string[]; bytes: Buffer; at: number };
}

interface Client<F> {
  res: ServerResponse;
  group: Group<F>;
  /** Events up to this id were covered by the greeting or the replay. */
  after: number;
  /** The greeting's bytes, allowed on top of the cap until they have reached the kernel. */
  allowance: number;
}

/** After the last client leaves, events are still held this long so that a reconnect can resume. */
const HOLD_AFTER_LAST_CLIENT_MS = 30_000;
function concat(parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

export class SseHub<F> {
  private readonly groups = new Map<string | symbol, Group<F>>();
  private readonly draining = new Map<ServerResponse, number>();
  private readonly summaries = new Map<string, () => (filter: F) => string | undefined>();
  private held: Held<F>[] = [];
  private heldFrom = 0;
  private heldBytes = 0;
  private pending: Held<F>[] = [];
  private flushing = false;
  /** Ids start at 0 (the log tail's seqs do); -1: nothing yet. */
  private lastId = -1;
  /** Every event after this id is held. */
  private floor = -1;
  private clients = 0;
  private lastLeftAt = -Infinity;
  private lastBeatAt = Date.now();
  private readonly timer: NodeJS.Timeout;
  /** Clients cut off for being too slow, since the start. */
  disconnects = 0;

  constructor(private readonly options: SseHubOptions<F>) {
    this.timer = setInterval(() => this.tick(), Math.min(options.summaryMs ?? 1000, options.heartbeatMs, options.drainMs ?? 10_000));
    this.timer.unref();
  }

  get size(): number {
    return this.clients;
  }

  /** Bytes written to clients and not yet taken by the kernel (shared bytes counted per client). */
  get queuedBytes(): number {
    let bytes = 0;
    for (const group of this.groups.values()) for (const client of group.clients) bytes += client.res.writableLength;
    for (const res of this.draining.keys()) bytes += res.writableLength;
    return bytes;
  }

  /** Starts an event stream on res; throws a 503 HttpError when maxClients are open. */
  open(req: IncomingMessage, res: ServerResponse, filter: F): void {
    if (this.clients >= this.options.maxClients) {
      throw new HttpError(503, 'too_many_streams', `at most ${this.options.maxClients} event streams at once`, { 'Retry-After': '5' });
    }
    const lastEventId = this.parseId(req.headers['last-event-id']);
    const resumed = lastEventId !== undefined && lastEventId >= this.floor;
    const missed = lastEventId !== undefined && !resumed ? this.floor - lastEventId : undefined;
    const key = this.options.filterKey?.(filter) ?? Symbol('client');
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = { key, filter, clients: new Set() }));
    res.writeHead(200, HEADERS);
    res.write(`retry: ${this.options.retryMs ?? 1000}\n: connected\n\n`);
    const client: Client<F> = { res, group, after: this.lastId, allowance: 0 };
    const first = resumed ? [this.replay(filter, lastEventId)] : this.greeting(group, { filter, lastEventId, missed });
    const pieces = first.filter((piece): piece is Buffer => piece !== undefined);
    if (pieces.length) {
      client.allowance = pieces.reduce((n, piece) => n + piece.length, 0);
      pieces.forEach((piece, i) => res.write(piece, i === pieces.length - 1 ? () => (client.allowance = 0) : undefined));
    }
    group.clients.add(client);
    this.clients++;
    res.on('close', () => this.forget(client));
  }

  /** Whether published events are kept (a client is open or left lately); when not, only the last id of a publish counts. */
  get holding(): boolean {
    return this.clients > 0 || Date.now() - this.lastLeftAt < HOLD_AFTER_LAST_CLIENT_MS;
  }

  /** Sends events at once (in this turn of the event loop, one write per client). */
  publish(events: SseEvent<F>[]): void {
    const holding = this.holding;
    for (const event of events) {
      const id = event.id ?? this.lastId + 1;
      if (id <= this.lastId) continue;
      // A jump in given ids: the ones between never came here.
      if (id > this.lastId + 1) this.floor = Math.max(this.floor, id - 1);
      this.lastId = id;
      if (!holding) continue;
      const data = typeof event.data === 'function' ? event.data() : event.data;
      const held = { id, bytes: encodeEvent(event.event, data, this.formatId(id)), match: event.match };
      this.held.push(held);
      this.heldBytes += held.bytes.length;
      this.pending.push(held);
    }
    if (!holding) {
      this.floor = this.lastId;
      this.held = [];
      this.heldFrom = this.heldBytes = 0;
      return;
    }
    this.trimHeld();
    if (this.pending.length && !this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Asks for one summary named `event` at the next tick; calls within one summaryMs coalesce. At the
   * tick, build() is called once and gives each group of clients its data (undefined: nothing).
   */
  summarize(event: string, build: () => (filter: F) => string | undefined): void {
    if (this.clients > 0) this.summaries.set(event, build);
  }

  /** Ends every stream with a `disconnect` event (reason "shutdown"). */
  close(): void {
    clearInterval(this.timer);
    const bye = encodeEvent('disconnect', JSON.stringify({ type: 'disconnect', reason: 'shutdown', message: 'the server is shutting down' }));
    for (const group of [...this.groups.values()]) {
      for (const client of [...group.clients]) {
        this.forget(client);
        const socket = client.res.socket;
        client.res.end(bye);
        // Kept alive, the connection would idle on and hold the server's close up to its keep-alive timeout.
        socket?.end();
      }
    }
    for (const res of [...this.draining.keys()]) res.destroy();
  }

  private formatId(id: number): string {
    return this.options.epoch ? `${this.options.epoch}-${id}` : String(id);
  }

  private parseId(header: string | string[] | undefined): number | undefined {
    if (typeof header !== 'string') return undefined;
    const prefix = this.options.epoch ? `${this.options.epoch}-` : '';
    if (!header.startsWith(prefix) || !/^\d{1,15}$/.test(header.slice(prefix.length))) return undefined;
    const id = Number(header.slice(prefix.length));
    return id <= this.lastId ? id : undefined;
  }

  /** The greeting's bytes (shared with other clients: written as they are, never copied), then the events since it, if any. */
  private greeting(group: Group<F>, opening: SseOpening<F>): (Buffer | undefined)[] {
    const cached = group.greeting;
    const maxAge = this.options.greetingMaxAgeMs;
    // A recent greeting of this filter, and every event since it still held: its bytes, then those events.
    if (maxAge !== undefined && cached && Date.now() - cached.at < maxAge && cached.id >= this.floor) {
      return [cached.bytes, cached.id < this.lastId ? this.replay(opening.filter, cached.id) : undefined];
    }
    const parts = this.options.greet?.(opening) ?? [];
    if (parts.length === 0) return [];
    // Clients greeted at the same moment share one copy of the bytes (a snapshot can be megabytes).
    if (cached && cached.id === this.lastId && cached.parts.length === parts.length && parts.every((p, i) => p.data === cached.parts[i])) return [cached.bytes];
    const id = this.lastId < 0 ? undefined : this.formatId(this.lastId);
    const bytes = concat(parts.map((p) => encodeEvent(p.event, p.data, id)));
    group.greeting = { id: this.lastId, parts: parts.map((p) => p.data), bytes, at: Date.now() };
    return [bytes];
  }

  private replay(filter: F, after: number): Buffer | undefined {
    const parts: Buffer[] = [];
    for (let i = this.heldFrom; i < this.held.length; i++) {
      const held = this.held[i];
      if (held.id > after && (!held.match || held.match(filter))) parts.push(held.bytes);
    }
    return parts.length ? concat(parts) : undefined;
  }

  private trimHeld(): void {
    while (this.heldBytes > this.options.replayBytes && this.heldFrom < this.held.length) {
      const oldest = this.held[this.heldFrom++];
      this.heldBytes -= oldest.bytes.length;
      this.floor = oldest.id;
    }
    if (this.heldFrom > 1024 && this.heldFrom * 2 > this.held.length) {
      this.held = this.held.slice(this.heldFrom);
      this.heldFrom = 0;
    }
  }

  private flush(): void {
    this.flushing = false;
    const events = this.pending;
    this.pending = [];
    for (const group of this.groups.values()) {
      const mine = events.filter((e) => !e.match || e.match(group.filter));
      if (mine.length === 0) continue;
      let all: Buffer | undefined;
      for (const client of group.clients) {
        if (client.after >= mine[mine.length - 1].id) continue;
        const chunk = client.after < mine[0].id ? (all ??= concat(mine.map((e) => e.bytes))) : concat(mine.filter((e) => e.id > client.after).map((e) => e.bytes));
        this.write(client, chunk);
      }
    }
  }

  private write(client: Client<F>, chunk: Buffer): void {
    const { res } = client;
    if (res.writableEnded || res.destroyed) return;
    const queued = res.writableLength;
    if (queued + chunk.length <= this.options.maxQueuedBytes + client.allowance) {
      res.write(chunk);
      return;
    }
    this.forget(client);
    this.disconnects++;
    const limitBytes = this.options.maxQueuedBytes;
    const message = `more than ${limitBytes} bytes were waiting to be read; reconnect with Last-Event-ID to resume`;
    res.end(encodeEvent('disconnect', JSON.stringify({ type: 'disconnect', reason: 'slow_reader', message, queuedBytes: queued, limitBytes })));
    this.draining.set(res, Date.now() + (this.options.drainMs ?? 10_000));
  }

  private forget(client: Client<F>): void {
    this.draining.delete(client.res);
    const { group } = client;
    if (!group.clients.delete(client)) return;
    this.clients--;
    this.lastLeftAt = Date.now();
    if (group.clients.size === 0) this.groups.delete(group.key);
  }

  private tick(): void {
    const now = Date.now();
    // A destroyed response closes, and forget() lets it go.
    for (const [res, until] of this.draining) if (until <= now) res.destroy();
    for (const [event, build] of this.summaries) {
      const forFilter = build();
      for (const group of this.groups.values()) {
        const data = forFilter(group.filter);
        const bytes = data === undefined ? undefined : encodeEvent(event, data);
        if (bytes) for (const client of group.clients) this.write(client, bytes);
      }
    }
    this.summaries.clear();
    if (now - this.lastBeatAt >= this.options.heartbeatMs) {
      this.lastBeatAt = now;
      for (const group of this.groups.values()) for (const client of group.clients) this.write(client, HEARTBEAT);
    }
  }
}
