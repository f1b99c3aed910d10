import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'winston';
import type { InstanceRecord } from './registry.ts';
import { writeFileAtomic } from '../shared/files.ts';

const FILE = 'registrations.json';
const WRITE_SPACING = 20;
const MAX_DELAY_MS = 5000;

/**
 * What is saved of an instance: who it is and its state, not its latest check (a restarted
 * registry checks everyone again at once, so check results would be stale anyway).
 */
function persisted(record: InstanceRecord): string {
  const { lastCheckAt: _at, lastLatencyMs: _latency, consecutiveFailures: _failures, lastError: _error, ...kept } = record;
  return JSON.stringify(kept);
}

/**
 * Registrations on disk under DATA_DIR, so a restarted registry checks everyone again instead of forgetting them.
 * Each instance is serialised when it changes, not at every write: a write then only joins the saved
 * texts, so with thousands of instances it never holds the event loop (and the patches waiting on it)
 * for the milliseconds that serialising them all would take.
 */
export class RegistrationStore {
  private readonly file: string;
  private readonly saved = new Map<InstanceRecord, string>();
  private timer?: NodeJS.Timeout;
  private writing?: Promise<void>;
  private dirty = false;
  /** How long the last write took: the next one waits WRITE_SPACING times that, so big registries don't write non-stop. */
  private lastWriteMs = 0;

  constructor(
    dataDir: string,
    private readonly logger: Logger,
    private readonly debounceMs = 200,
  ) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.file = path.join(dataDir, FILE);
  }

  load(): InstanceRecord[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as { instances?: InstanceRecord[] };
      return Array.isArray(parsed.instances) ? parsed.instances.map((record) => ({ ...record, consecutiveFailures: 0 })) : [];
    } catch (err) {
      this.logger.error(`ignoring unreadable ${this.file}: ${(err as Error).message}`);
      return [];
    }
  }

  /** An instance was added or changed (`removed`: it is gone): saved with the next write. */
  changed(record: InstanceRecord, removed = false): void {
    if (removed) this.saved.delete(record);
    else this.saved.set(record, persisted(record));
    this.markDirty();
  }

  /** Something changed: write soon, coalescing bursts into one write (at most ~5% of the time spent writing). */
  private markDirty(): void {
    this.dirty = true;
    if (this.timer) return;
    const delay = Math.min(MAX_DELAY_MS, Math.max(this.debounceMs, this.lastWriteMs * WRITE_SPACING));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing;
    if (!this.dirty) return;
    this.dirty = false;
    const started = performance.now();
    const text = `{"version":1,"instances":[${[...this.saved.values()].join(',')}]}`;
    this.writing = writeFileAtomic(this.file, text)
      .then(() => {
        this.lastWriteMs = performance.now() - started;
      })
      .catch((err) => {
        this.dirty = true;
        this.logger.error(`could not save registrations: ${(err as Error).message}`);
      })
      .finally(() => (this.writing = undefined));
    await this.writing;
  }
}
