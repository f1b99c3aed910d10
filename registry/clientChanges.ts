import type { Logger } from 'winston';
import type { prom } from '../shared/metrics.ts';
import { HttpError } from '../shared/errors.ts';
import { InstanceIdInUse, type InstanceRecord, type Registry } from './registry.ts';
import { toView } from './instanceView.ts';
import type { Announcer } from './announcer.ts';
import type { CatalogStore } from './catalogStore.ts';
import type { HostCheck } from './hostCheck.ts';
import { RateLimitedLog } from './rateLimitedLog.ts';
import { registrationSchema, type InstanceView, type LeaseResponse, type RegisterResponse } from './protocol.ts';
import { parseBody } from '../shared/validate.ts';
import { fastRegistration } from './registrationFastPath.ts';

/**
 * The changes a client asks for (register, deregister, renew a lease), each answered only once it is
 * kept: on disk, or committed in etcd. That is what a 200 from the registry promises.
 */
export class ClientChanges {
  private readonly changeLog: RateLimitedLog;

  constructor(
    private readonly registry: Registry,
    private readonly store: CatalogStore,
    private readonly announcer: Announcer,
    private readonly hostCheck: HostCheck,
    private readonly registrations: prom.Counter,
    private readonly heartbeatIntervalMs: number,
    logger: Logger,
    /** Checks an instance at once (a refused id's holder may be dead: then the id is free sooner). */
    private readonly checkSoon: (instanceId: string) => void = () => undefined,
  ) {
    this.changeLog = new RateLimitedLog(logger);
  }

  /** Validates a registration, checks its hosts, registers it, and answers once it is kept and its first patch is through. */
  async register(body: unknown, remoteAddress: string | undefined): Promise<RegisterResponse> {
    const decoded = fastRegistration(body);
    const registration = decoded?.registration ?? parseBody(registrationSchema, body, 'invalid_field');
    const resolving = this.hostCheck.assertAllowed(registration, remoteAddress, decoded?.hosts);
    if (resolving) await resolving;
    this.assertTakingChanges();
    let registered: { record: InstanceRecord; created: boolean };
    try {
      registered = this.registry.register(registration);
    } catch (err) {
      if (err instanceof InstanceIdInUse) {
        this.checkSoon(err.holder.instanceId);
        throw new HttpError(409, 'instance_id_in_use', `${err.message}; register without instanceId to get one`);
      }
      throw err;
    }
    const { record, created } = registered;
    const [seq] = await Promise.all([this.announcer.answerSeq(record), this.kept(record.instanceId)]);
    this.registrations.inc();
    const verb = created ? 'registered' : 're-registered';
    const restart = created && record.predecessorId ? `, in place of ${record.predecessorId}` : '';
    this.changeLog.info(verb, `${verb} ${record.serviceName} at ${record.serviceURL} (${record.instanceId}${restart})`);
    return {
      instanceId: record.instanceId,
      providers: this.registry.providerMap(record.requiredServices),
      seq,
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      leaseExpiresAt: record.leaseExpiresAt ? new Date(record.leaseExpiresAt).toISOString() : undefined,
    };
  }

  async deregister(record: InstanceRecord | undefined, what: string): Promise<InstanceView> {
    if (!record) throw new HttpError(404, 'unknown_instance', `no registered instance ${what}`);
    this.assertTakingChanges();
    this.registry.remove(record.instanceId, 'deregistered');
    await this.kept(record.instanceId);
    this.changeLog.info('deregistered', `deregistered ${record.serviceName} at ${record.serviceURL}`);
    return toView(record);
  }

  async renewLease(instanceId: string): Promise<LeaseResponse> {
    const record = this.registry.get(instanceId);
    if (!record) throw new HttpError(404, 'unknown_instance', `no registered instance with id ${instanceId}; register again`);
    if (record.ttlSeconds === undefined) throw new HttpError(409, 'no_lease', `instance ${instanceId} is checked by heartbeat, not a lease`);
    this.assertTakingChanges();
    this.registry.renewLease(record);
    // A renewal is no change anyone is told of, but its 200 promises it is kept.
    this.store.changed({ type: 'lease', instance: record });
    await this.kept(record.instanceId);
    return {
      instanceId,
      leaseExpiresAt: new Date(record.leaseExpiresAt!).toISOString(),
      providers: this.registry.providerMap(record.requiredServices),
    };
  }

  flush(): void {
    this.changeLog.flush();
  }

  /** A replica past its lease takes no change (a request read late may be one its client gave up on): the client moves on. */
  private assertTakingChanges(): void {
    const reason = this.store.refusal?.();
    if (reason) throw new HttpError(503, 'replica_rejoining', `${reason}; try another replica`, { 'Retry-After': '1' });
  }

  /** Waits until the change is kept; a store that can't keep it is a 503 to retry. */
  private async kept(instanceId: string): Promise<void> {
    try {
      await this.store.sync(instanceId);
    } catch (err) {
      throw new HttpError(503, 'store_unavailable', `the change could not be saved (${(err as Error).message}); try again`, { 'Retry-After': '1' });
    }
  }
}
