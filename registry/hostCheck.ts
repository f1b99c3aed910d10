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

  /**
   * `hosts`: the URLs' host names when the caller has them already (the fast path parsed the URLs). Answers a
   * promise only when a host name must be resolved; an address is checked at once (no promise per registration).
   */
  assertAllowed(registration: Registration, remoteAddress: string | undefined, hosts = urlHosts(registration)): Promise<void> | undefined {
    const host = hosts.serviceURL;
    for (const field of ['heartbeatURL', 'serviceUpdateURL'] as const) {
      const other = hosts[field];
      if (other !== undefined && other !== host) {
        throw new HttpError(400, 'foreign_host', `${field}: must be on the serviceURL's host (${host}), got ${other}`);
      }
    }
    if (this.allowForeignHosts || this.ownership.assertOwnsAddress(remoteAddress, host, 'serviceURL')) return undefined;
    return this.ownership.assertOwns(remoteAddress, host, 'serviceURL');
  }
}

/** The host names of a registration's URLs (undefined for one it doesn't give). */
export interface UrlHosts {
  serviceURL: string;
  heartbeatURL?: string;
  serviceUpdateURL?: string;
}

function urlHosts(registration: Registration): UrlHosts {
  const hostOf = (url: string | undefined) => (url ? new URL(url).hostname : undefined);
  return { serviceURL: new URL(registration.serviceURL).hostname, heartbeatURL: hostOf(registration.heartbeatURL), serviceUpdateURL: hostOf(registration.serviceUpdateURL) };
}
