/**
 * Who sent a line that doesn't name its service: the X-Service-Name header, the instance named
 * by X-Instance-Id, or the one service registered at the caller's address (from the registry's
 * listing, refreshed at most every few seconds). Otherwise "unknown".
 */
import type { Request } from 'express';
import type { RegistryClient } from '../registry/client.ts';
import type { InstanceView } from '../registry/protocol.ts';
import { INSTANCE_ID_HEADER, SERVICE_NAME_HEADER } from './protocol.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const UNKNOWN_SERVICE = 'unknown';

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

function plainAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/, '');
}

export class CallerDirectory {
  private instances: InstanceView[] = [];
  private fetchedAt = 0;
  private refreshing?: Promise<void>;

  constructor(
    private readonly registry: RegistryClient,
    private readonly refreshMs = 5000,
  ) {}

  private async listing(): Promise<InstanceView[]> {
    if (Date.now() - this.fetchedAt > this.refreshMs) {
      this.refreshing ??= this.registry
        .list()
        .then((instances) => {
          this.instances = instances;
        })
        .catch(() => {
          // The registry is away: keep what we knew.
        })
        .finally(() => {
          this.fetchedAt = Date.now();
          this.refreshing = undefined;
        });
      await this.refreshing;
    }
    return this.instances;
  }

  async nameFor(req: Request): Promise<string> {
    const named = req.get(SERVICE_NAME_HEADER);
    if (named && NAME.test(named)) return named;
    const instances = await this.listing();
    const instanceId = req.get(INSTANCE_ID_HEADER);
    if (instanceId) {
      const instance = instances.find((i) => i.instanceId === instanceId);
      if (instance) return instance.serviceName;
    }
    const address = plainAddress(req.socket.remoteAddress);
    const names = new Set(instances.filter((i) => plainAddress(hostOf(i.serviceURL)) === address).map((i) => i.serviceName));
    return names.size === 1 ? [...names][0] : UNKNOWN_SERVICE;
  }
}
