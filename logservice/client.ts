/**
 * How a service's lines reach the log service: its starter passes its options through withLogShipping
 * (as the Go course's main sets the client logger), which adds a LogShipper (logservice/shipper.ts) to
 * the service's logger with its counts in the service's metrics.
 */
import { prom } from '../shared/metrics.ts';
import type { Service, StartServiceOptions } from '../shared/service.ts';
import { LogShipper } from './shipper.ts';
import { logShipperSettings, type LogShipperOptions } from './shipperConfig.ts';

/**
 * Adds a LogShipper to a service's logger, with its counts in the service's metrics, its troubles in the
 * logger itself (they are shipped once the log service is back), and its final flush as the last step of stop().
 */
export function attachLogShipper(svc: Service, settings: Partial<LogShipperOptions> = {}): LogShipper {
  const { logger } = svc;
  const shipper = new LogShipper({
    ...logShipperSettings(),
    ...settings,
    providers: svc.providers,
    serviceName: svc.name,
    onStatus: (message) => {
      if (logger.writable) logger.warn(message);
    },
  });
  logger.add(shipper);
  // Ending the logger starts the shipper's final flush; stop() waits until it is done.
  svc.addShutdownStep(() => shipper.close());
  const registers = [svc.metrics];
  const gauge = (name: string, help: string, read: () => number) =>
    new prom.Gauge({ name, help, registers, collect() { this.set(read()); } });
  gauge('log_shipper_shipped_lines', 'Lines the log service accepted from this service', () => shipper.shipped);
  gauge('log_shipper_dropped_lines', 'Lines dropped because the shipping buffer was full', () => shipper.dropped);
  gauge('log_shipper_rejected_lines', 'Lines the log service refused as malformed', () => shipper.rejected);
  gauge('log_shipper_buffered_lines', 'Lines waiting to be shipped', () => shipper.buffered);
  gauge('log_shipper_posts', 'POST /log requests made, retries included', () => shipper.posts);
  gauge('log_shipper_throttled', 'Answers 503/429 from the log service (waited out per Retry-After)', () => shipper.throttled);
  return shipper;
}

/**
 * A service's options with its lines shipped to the log service ("log" is added to what it requires), for its
 * starter to pass to startService, as the Go course's main sets the client logger. Lines from start-up on are shipped.
 */
export function withLogShipping(options: StartServiceOptions): StartServiceOptions {
  return {
    ...options,
    requiredServices: [...new Set([...(options.requiredServices ?? []), 'log'])],
    setup: (svc) => {
      options.setup?.(svc);
      attachLogShipper(svc);
    },
  };
}

/** The shipper a service's logger ships through, if it has one. */
export function logShipperOf(svc: Service): LogShipper | undefined {
  return svc.logger.transports.find((transport): transport is LogShipper => transport instanceof LogShipper);
}
