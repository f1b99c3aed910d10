/**
 * The events service's journal: accepted events, topic counters, subscribers and their cursors in
 * SQLite under DATA_DIR (WAL; a commit someone waits for is fsynced). Writes are grouped: everything
 * asked for during one turn of the event loop is one transaction and one fsync, so an acknowledged
 * publish costs a share of a commit, not a commit of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { StoredEvent } from './event.ts';
import { sqliteJobs, type SqliteHousekeepingSettings } from '../shared/sqliteBackup.ts';
import type { HousekeepingJob } from '../shared/housekeeping.ts';

export interface SubscriberRow {
  key: string;
  /** The subscriber's description (kind, target, topics...), as JSON. */
  spec: string;
  /** The first event id it is owed (it was present from then on). */
  since: number;
  /** Every event up to this id is done for it (delivered, dropped, or not its topic). */
  cursor: number;
}

export interface JournalContents {
  journalId: string;
  lastId: number;
  topics: Map<string, number>;
  subscribers: SubscriberRow[];
  /** Events still owed to someone, oldest first. */
  events: StoredEvent[];
}

interface PendingWrites {
  events: StoredEvent[];
  topics: Map<string, number>;
  saved: Map<string, SubscriberRow>;
  cursors: Map<string, number>;
  deleted: Set<string>;
  pruneThrough: number;
  waiters: { resolve: () => void; reject: (err: Error) => void }[];
}

const emptyWrites = (): PendingWrites => ({
  events: [],
  topics: new Map(),
  saved: new Map(),
  cursors: new Map(),
  deleted: new Set(),
  pruneThrough: 0,
  waiters: [],
});

const isEmpty = (w: PendingWrites): boolean =>
  w.events.length === 0 && w.saved.size === 0 && w.cursors.size === 0 && w.deleted.size === 0 && w.pruneThrough === 0 && w.waiters.length === 0;

export class Journal {
  private readonly db: Database.Database;
  private readonly statements;
  private pending = emptyWrites();
  private scheduled = false;
  private synchronous?: 'FULL' | 'NORMAL';
  private closed = false;
  /** Commits and their durations, for metrics. */
  readonly stats = { commits: 0, lastCommitMs: 0 };

  constructor(private readonly dataDir: string) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, 'events.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        payload BLOB NOT NULL
      );
      CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS subscribers (key TEXT PRIMARY KEY, spec TEXT NOT NULL, since INTEGER NOT NULL, cursor INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    `);
    const db = this.db;
    this.statements = {
      insertEvent: db.prepare('INSERT INTO events (id, topic, seq, time, content_type, payload) VALUES (?, ?, ?, ?, ?, ?)'),
      upsertTopic: db.prepare('INSERT INTO topics (topic, seq) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET seq = excluded.seq'),
      saveSubscriber: db.prepare('INSERT OR REPLACE INTO subscribers (key, spec, since, cursor) VALUES (?, ?, ?, ?)'),
      saveCursor: db.prepare('UPDATE subscribers SET cursor = ? WHERE key = ? AND cursor < ?'),
      deleteSubscriber: db.prepare('DELETE FROM subscribers WHERE key = ?'),
      prune: db.prepare('DELETE FROM events WHERE id <= ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    };
  }

  /** Everything needed to carry on after a restart (or a crash). */
  load(): JournalContents {
    let journalId = this.statements.getMeta.get('journalId')?.value;
    if (!journalId) {
      journalId = randomUUID();
      this.statements.setMeta.run('journalId', journalId);
    }
    const subscribers = this.db.prepare('SELECT key, spec, since, cursor FROM subscribers').all() as SubscriberRow[];
    const topics = new Map((this.db.prepare('SELECT topic, seq FROM topics').all() as { topic: string; seq: number }[]).map((t) => [t.topic, t.seq]));
    const lastEvent = (this.db.prepare('SELECT max(id) AS id FROM events').get() as { id: number | null }).id ?? 0;
    const lastId = Math.max(lastEvent, Number(this.statements.getMeta.get('lastId')?.value ?? 0));
    const from = subscribers.reduce((low, s) => Math.min(low, Math.max(s.cursor, s.since - 1)), lastId);
    const rows = this.db
      .prepare('SELECT id, topic, seq, time, content_type AS contentType, payload FROM events WHERE id > ? ORDER BY id')
      .all(from) as StoredEvent[];
    return { journalId, lastId, topics, subscribers, events: rows };
  }

  /** Writes the events; resolves once they are on disk. */
  append(events: StoredEvent[]): Promise<void> {
    for (const event of events) {
      this.pending.events.push(event);
      this.pending.topics.set(event.topic, event.seq);
    }
    return this.durable();
  }

  /** Saves a new or changed subscriber; resolves once it is on disk. */
  saveSubscriber(row: SubscriberRow): Promise<void> {
    this.pending.deleted.delete(row.key);
    this.pending.saved.set(row.key, row);
    return this.durable();
  }

  deleteSubscriber(key: string): void {
    this.pending.saved.delete(key);
    this.pending.cursors.delete(key);
    this.pending.deleted.add(key);
    this.schedule();
  }

  /** A subscriber's progress, written with the next commit (a crash may redeliver what came after it). */
  saveCursor(key: string, cursor: number): void {
    this.pending.cursors.set(key, cursor);
    this.schedule();
  }

  /** Events up to this id are owed to nobody any more. */
  prune(throughId: number): void {
    this.pending.pruneThrough = Math.max(this.pending.pruneThrough, throughId);
    this.schedule();
  }

  /** Commits what is pending now (at shutdown). */
  flush(): void {
    this.commit();
  }

  /** The journal's WAL checkpoint and online backup jobs (shared/sqliteBackup.ts). */
  housekeepingJobs(settings: SqliteHousekeepingSettings): HousekeepingJob[] {
    return sqliteJobs(this.db, 'events', this.dataDir, settings);
  }

  close(): void {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    this.db.close();
  }

  private durable(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the journal is closed'));
    return new Promise((resolve, reject) => {
      this.pending.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.commit());
  }

  private setSynchronous(mode: 'FULL' | 'NORMAL'): void {
    if (this.synchronous === mode) return;
    this.db.pragma(`synchronous = ${mode}`);
    this.synchronous = mode;
  }

  private commit(): void {
    this.scheduled = false;
    if (this.closed) return;
    const writes = this.pending;
    this.pending = emptyWrites();
    const s = this.statements;
    if (isEmpty(writes)) return;
    const started = performance.now();
    // FULL when someone waits for an answer: the WAL is fsynced, so a 202 survives a power cut, not only a crash.
    // Cursors, prunes and deletions alone go without the fsync (a crash may redeliver, never lose); the next
    // FULL commit syncs them too. Under load an fsync takes tens of ms, and it holds up every delivery meanwhile.
    this.setSynchronous(writes.waiters.length > 0 ? 'FULL' : 'NORMAL');
    try {
      this.db.transaction(() => {
        for (const e of writes.events) s.insertEvent.run(e.id, e.topic, e.seq, e.time, e.contentType, e.payload);
        for (const [topic, seq] of writes.topics) s.upsertTopic.run(topic, seq);
        if (writes.events.length) s.setMeta.run('lastId', String(writes.events[writes.events.length - 1].id));
        for (const key of writes.deleted) s.deleteSubscriber.run(key);
        for (const row of writes.saved.values()) s.saveSubscriber.run(row.key, row.spec, row.since, row.cursor);
        for (const [key, cursor] of writes.cursors) s.saveCursor.run(cursor, key, cursor);
        if (writes.pruneThrough > 0) s.prune.run(writes.pruneThrough);
      })();
    } catch (err) {
      for (const waiter of writes.waiters) waiter.reject(err as Error);
      return;
    }
    this.stats.commits++;
    this.stats.lastCommitMs = performance.now() - started;
    for (const waiter of writes.waiters) waiter.resolve();
  }
}
