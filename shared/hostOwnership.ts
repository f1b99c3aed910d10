import dns from 'node:dns/promises';
import net from 'node:net';
import { HttpError } from './errors.ts';
import { isLoopback } from './config.ts';

const unmapped = (address: string) => address.replace(/^::ffff:/, '');

/**
 * Whether a caller owns the host it asks us to call: the host resolves to the caller's own address
 * (loopback may name loopback). So the registry and the events service can't be used to make
 * requests to hosts the caller doesn't run (SSRF).
 */
export class HostOwnership {
  /** Addresses of a host name, cached for a minute: registrations come in bursts and getaddrinfo is slow. */
  private readonly resolved = new Map<string, { addresses: string[]; until: number }>();

  /** Throws 400 when `hostname` doesn't resolve, 403 when it isn't the caller's; `field` names it in the message. */
  async assertOwns(remoteAddress: string | undefined, hostname: string, field: string): Promise<void> {
    const host = hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    try {
      addresses = await this.addressesOf(host);
    } catch {
      throw new HttpError(400, 'invalid_field', `${field}: host "${host}" does not resolve`);
    }
    this.assertAmong(remoteAddress, host, addresses, field);
  }

  /** assertOwns for a host that is an IP address (no lookup, so no promise); false when the host is a name to resolve. */
  assertOwnsAddress(remoteAddress: string | undefined, hostname: string, field: string): boolean {
    const host = hostname.replace(/^\[|\]$/g, '');
    if (!net.isIP(host)) return false;
    this.assertAmong(remoteAddress, host, [unmapped(host)], field);
    return true;
  }

  private assertAmong(remoteAddress: string | undefined, host: string, addresses: string[], field: string): void {
    const remote = unmapped(remoteAddress ?? '');
    const owns = addresses.some((address) => address === remote || (isLoopback(address) && isLoopback(remote)));
    if (!owns) {
      throw new HttpError(403, 'foreign_host', `${field}: host "${host}" is not the caller's address (${remote}); a service may only name its own host`);
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
