import type { InstanceState } from './protocol.ts';
import type { OutboundResult } from './outbound.ts';

export interface HealthPolicyOptions {
  /** Timeouts or bad statuses in a row before an instance is down (HEARTBEAT_FAILURES). */
  heartbeatFailures: number;
}

export interface Health {
  state: InstanceState;
  consecutiveFailures: number;
}

/**
 * What one check result makes of an instance's health. A refused or reset connection (already
 * confirmed once by the checker) is death at once; a timeout or a bad status needs
 * `heartbeatFailures` in a row, so a busy service is not declared dead on one slow answer.
 * Any answer brings an instance up.
 */
export function nextHealth(health: Health, result: OutboundResult, options: HealthPolicyOptions): Health {
  if (result.ok) return { state: 'up', consecutiveFailures: 0 };
  const consecutiveFailures = health.consecutiveFailures + 1;
  const down = health.state === 'down' || result.kind === 'connection' || consecutiveFailures >= options.heartbeatFailures;
  return { state: down ? 'down' : 'up', consecutiveFailures };
}
