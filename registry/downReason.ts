/** Why an instance is down, as data (protocol.ts DownReason), from what its check or its lease said. */
import type { DownReason } from './protocol.ts';
import type { OutboundResult } from './outbound.ts';

const REFUSED = new Set(['ECONNREFUSED']);
const RESET = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);

export function checkFailure(result: Extract<OutboundResult, { ok: false }>): DownReason {
  const { message } = result;
  if (result.kind === 'timeout') return { code: 'timeout', message };
  if (result.kind === 'status') return { code: 'bad_status', message, status: result.status };
  const cause = result.cause ?? '';
  if (REFUSED.has(cause) || message.includes('ECONNREFUSED')) return { code: 'connection_refused', message };
  if (RESET.has(cause) || message.includes('ECONNRESET')) return { code: 'connection_reset', message };
  return { code: 'connection_failed', message };
}

/** A lapsed lease; its time is in the message once, and how long ago is for the reader to work out. */
export function leaseExpired(leaseExpiresAt: number): DownReason {
  return { code: 'lease_expired', message: `the lease ran out at ${new Date(leaseExpiresAt).toISOString()} without a renewal` };
}
