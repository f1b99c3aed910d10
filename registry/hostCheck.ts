import { HttpError } from '../shared/errors.ts';
import { HostOwnership } from '../shared/hostOwnership.ts';
import type { Registration } from './protocol.ts';

/**
 * The host rule, so the registry can't be used to make requests to arbitrary hosts: a registration's
 * heartbeatURL and serviceUpdateURL are on its serviceURL's host, and that host is the caller's own
 * address (loopback may register loopback). `allowForeignHosts` lifts the second part, for registrars behind NAT.
 */
export class HostCheck {
  private readonly ownership = new HostOwnership();

  constructor(private readonly allowForeignHosts: boolean) {}

  async assertAllowed(registration: Registration, remoteAddress: string | undefined): Promise<void> {
    const host = new URL(registration.serviceURL).hostname;
    for (const field of ['heartbeatURL', 'serviceUpdateURL'] as const) {
      const value = registration[field];
      if (value && new URL(value).hostname !== host) {
        throw new HttpError(400, 'foreign_host', `${field}: must be on the serviceURL's host (${host}), got ${new URL(value).hostname}`);
      }
    }
    if (!this.allowForeignHosts) await this.ownership.assertOwns(remoteAddress, host, 'serviceURL');
  }
}
