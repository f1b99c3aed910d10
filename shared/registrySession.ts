/**
 * A service's standing with the registry: it registers (retrying with backoff), keeps the provider table it
 * is given current from the answer, the patches and re-syncs, and registers again when the registry forgot it.
 * It has no HTTP of its own: the service shell hands it the heartbeats and patches it receives.
 */
import { EqualJitterBackoff, type BackoffOptions } from './backoff.ts';
import type { ProviderTable } from './providers.ts';
import { RegistryError, type RegistryClient } from '../registry/client.ts';
import type { PatchBody, RegisterResponse, RegistrationInput } from '../registry/protocol.ts';

/** What the session asks of the registry: RegistryClient fits, and a test passes a fake. */
export type SessionRegistry = Pick<RegistryClient, 'register' | 'renewLease' | 'providers' | 'deregister'>;

/** Where the session reports (the service's winston logger fits). */
export interface SessionLog {
  info(message: string): unknown;
  warn(message: string): unknown;
  error(message: string): unknown;
}

export interface RegistrySessionOptions {
  registry: SessionRegistry;
  /** The registry's address, for log lines. */
  registryUrl: string;
  /** The table this session keeps current; it lists the required services. */
  providers: ProviderTable;
  requiredServices: string[];
  logger: SessionLog;
  /** Register with a lease (renewed every third of it) instead of being checked by heartbeats. */
  leaseTtlSeconds?: number;
  /** Told of each full re-sync that got a listing (the service counts them). */
  onResync?: () => void;
  /** Between registration attempts (default 200 ms doubling up to 5 s, with equal jitter). */
  backoff?: BackoffOptions;
  now?: () => number;
}

/** The registration, as the service builds it once it knows its URL; the session adds the instance id it was given. */
export type SessionRegistration = Omit<RegistrationInput, 'instanceId'>;

export class RegistrySession {
  /** Resolves on the first successful registration. */
  readonly registered: Promise<void>;
  private id?: string;
  private registration?: SessionRegistration;
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private lastSeq?: number;
  private patchesApplied = 0;
  private resyncing?: Promise<void>;
  private resyncAgain = false;
  private lastHeartbeatAt: number;
  private heartbeatIntervalMs = 1000;
  private registering?: Promise<void>;
  private watchdog?: NodeJS.Timeout;
  private resolveRegistered!: () => void;

  constructor(private readonly options: RegistrySessionOptions) {
    this.now = options.now ?? Date.now;
    this.lastHeartbeatAt = this.now();
    this.registered = new Promise((resolve) => (this.resolveRegistered = resolve));
  }

  get instanceId(): string | undefined {
    return this.id;
  }

  /** Aborts when the session closes (the service is stopping). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Starts registering, and the watchdog that notices when the registry forgot us. */
  start(registration: SessionRegistration): void {
    this.registration = registration;
    void this.registerLoop();
    const lease = this.options.leaseTtlSeconds;
    this.watchdog = setInterval(() => this.checkRegistration(), lease ? (lease * 1000) / 3 : 500);
    this.watchdog.unref();
  }

  /** The registry checked us (GET /heartbeat): it still knows us. */
  heartbeat(): void {
    this.lastHeartbeatAt = this.now();
  }

  /** Registers, retrying with backoff and jitter while the registry is unreachable. One loop at a time. */
  private registerLoop(): Promise<void> {
    this.registering ??= (async () => {
      const backoff = new EqualJitterBackoff({ initialMs: 200, maxMs: 5000, ...this.options.backoff });
      let attempts = 0;
      while (!this.abort.signal.aborted) {
        try {
          const answer = await this.options.registry.register({ ...this.registration!, instanceId: this.id });
          this.onRegistered(answer);
          return;
        } catch (err) {
          attempts++;
          const reason = (err as Error).message;
          if (err instanceof RegistryError && err.status >= 400 && err.status < 500) {
            this.options.logger.error(`the registry refused our registration: ${reason}`);
          } else if (attempts === 1 || attempts % 10 === 0) {
            this.options.logger.warn(`cannot register with ${this.options.registryUrl} (${reason}); retrying with backoff`);
          }
        }
        if (!(await backoff.wait(this.abort.signal))) return;
      }
    })().finally(() => (this.registering = undefined));
    return this.registering;
  }

  private onRegistered(answer: RegisterResponse): void {
    const first = this.id === undefined;
    this.id = answer.instanceId;
    this.heartbeatIntervalMs = answer.heartbeatIntervalMs || 1000;
    this.lastHeartbeatAt = this.now();
    // A patch newer than this answer already arrived (it raced the answer): the answer's list may be older than it.
    // The first patch itself comes before the answer and carries the answer's seq: that one is not ahead.
    const patchesAhead = this.lastSeq !== undefined && this.lastSeq > answer.seq;
    for (const [name, urls] of Object.entries(answer.providers)) this.options.providers.replace(name, urls);
    if (!patchesAhead) this.lastSeq = answer.seq;
    const name = this.registration!.serviceName;
    this.options.logger.info(`${first ? 'registered' : 'registered again'} as ${name} (${answer.instanceId}) with ${this.options.registryUrl}`);
    this.resolveRegistered();
    if (patchesAhead) void this.resync();
  }

  /** Applies a patch the registry POSTed (already validated); a gap in its seq means re-sync. */
  applyPatch(patch: PatchBody): void {
    this.patchesApplied++;
    const { providers, requiredServices } = this.options;
    for (const { name, url } of patch.removed ?? []) providers.remove(name, url);
    for (const { name, url } of patch.added ?? []) if (requiredServices.includes(name)) providers.add(name, url);
    const seq = patch.seq;
    if (seq === undefined) return;
    const expected = this.lastSeq === undefined ? undefined : this.lastSeq + 1;
    // Anything but the next number (a lost patch, or a registry that restarted and counts from 1) means re-sync.
    this.lastSeq = seq;
    if (expected !== undefined && seq !== expected) {
      this.options.logger.info(`patch ${seq} where ${expected} was expected: re-syncing from the registry`);
      void this.resync();
    }
  }

  /**
   * Rebuilds the provider table from GET /services. Calls made while one runs share it; if patches
   * arrived while the listing was on its way, the listing may be older than they are: fetch again.
   */
  resync(): Promise<void> {
    const { requiredServices } = this.options;
    if (requiredServices.length === 0) return Promise.resolve();
    if (this.resyncing) {
      this.resyncAgain = true;
      return this.resyncing;
    }
    this.resyncing = (async () => {
      for (let round = 0; round < 3; round++) {
        this.resyncAgain = false;
        const patchesBefore = this.patchesApplied;
        try {
          const map = await this.options.registry.providers(requiredServices);
          this.options.onResync?.();
          for (const [name, urls] of Object.entries(map)) this.options.providers.replace(name, urls);
        } catch (err) {
          this.options.logger.warn(`re-sync failed: ${(err as Error).message}`);
          return;
        }
        if (!this.resyncAgain && this.patchesApplied === patchesBefore) return;
      }
    })().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  /** The watchdog's tick: notices when the registry forgot us (no heartbeat for a while, or a lease it doesn't know) and registers again. */
  checkRegistration(): void {
    if (this.abort.signal.aborted || this.registering || !this.id) return;
    if (this.options.leaseTtlSeconds) {
      const patchesBefore = this.patchesApplied;
      void this.options.registry.renewLease(this.id).then(
        (answer) => {
          // A patch that arrived meanwhile is newer than this answer's list.
          if (this.patchesApplied !== patchesBefore) return;
          for (const [name, urls] of Object.entries(answer.providers)) this.options.providers.replace(name, urls);
        },
        (err: RegistryError) => {
          if (err.status === 404) {
            this.options.logger.warn('the registry does not know our lease; registering again');
            void this.registerLoop();
          } else this.options.logger.warn(`lease renewal failed: ${err.message}`);
        },
      );
      return;
    }
    const silence = this.now() - this.lastHeartbeatAt;
    if (silence > 4 * this.heartbeatIntervalMs + 1000) {
      this.options.logger.warn(`no heartbeat check from the registry for ${silence} ms; registering again`);
      this.lastHeartbeatAt = this.now();
      void this.registerLoop();
    }
  }

  /** Stops the loops at once, then deregisters (a registry that is gone will notice by itself). */
  async close(): Promise<void> {
    this.abort.abort();
    clearInterval(this.watchdog);
    // A registration still on its way may yet be answered (the registry answers once it is on disk): wait
    // for it, bounded by the client's timeout, so what it registered is taken back rather than left behind.
    await this.registering;
    if (!this.id) return;
    try {
      await this.options.registry.deregister(this.id);
      this.options.logger.info('deregistered');
    } catch (err) {
      this.options.logger.warn(`could not deregister (${(err as Error).message}); the registry will notice we are gone`);
    }
  }
}
