import dns from 'node:dns/promises';
import net from 'node:net';
import { HttpError } from '../shared/errors.ts';
import { isLoopback } from '../shared/config.ts';
import type { Registration } from './protocol.ts';

const unmapped = (address: string) => address.replace(/^::ffff:/, '');

/**
 * The host rule, so the registry can't be used to make requests to arbitrary hosts: a registration's
 * heartbeatURL and serviceUpdateURL are on its serviceURL's host, and that host is the caller's own
 * address (loopback may register loopback). `allowForeignHosts` lifts the second part, for registrars behind NAT.
 */
export class HostCheck {
  /** Addresses of a host name, cached for a minute: registrations come in bursts and getaddrinfo is slow. */
  private readonly resolved = new Map<string, { addresses: string[]; until: number }>();

  constructor(private readonly allowForeignHosts: boolean) {}

  async assertAllowed(registration: Registration, remoteAddress: string | undefined): Promise<void> {
    const host = new URL(registration.serviceURL).hostname;
    for (const field of ['heartbeatURL', 'serviceUpdateURL'] as const) {
      const value = registration[field];
      if (value && new URL(value).hostname !== host) {
        throw new HttpError(400, 'foreign_host', `${field}: must be on the serviceURL's host (${host}), got ${new URL(value).hostname}`);
      }
    }
    if (!this.allowForeignHosts) await this.assertOwnsHost(remoteAddress, host.replace(/^\[|\]$/g, ''));
  }

  private async assertOwnsHost(remoteAddress: string | undefined, hostname: string): Promise<void> {
    const remote = unmapped(remoteAddress ?? '');
    let addresses: string[];
    try {
      addresses = await this.addressesOf(hostname);
    } catch {
      throw new HttpError(400, 'invalid_field', `serviceURL: host "${hostname}" does not resolve`);
    }
    const owns = addresses.some((address) => address === remote || (isLoopback(address) && isLoopback(remote)));
    if (!owns) {
      throw new HttpError(
        403,
        'foreign_host',
        `serviceURL: host "${hostname}" is not the caller's address (${remote}); a service may only register URLs on its own host`,
      );
    }
  }

  private async addressesOf(hostname: string): Promise<string[]> {
    if (net.isIP(hostname)) return [unmapped(hostname)];
    const cached = this.resolved.get(hostname);
    if (cached && cached.until > Date.now()) return cached.addresses;
    const addresses = (await dns.lookup(hostname, { all: true })).map((a) => unmapped(a.address));
    if (this.resolved.size > 1000) this.resolved.clear();
    this.resolved.set(hostname, { addresses, until: Date.now() + 60_000 });
    return addresses;
  }
}
