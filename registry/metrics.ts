import { createMetrics, prom } from '../shared/metrics.ts';
import type { Registry } from './registry.ts';
import type { CheckObserver } from './healthChecker.ts';
import type { NotifierObserver } from './notifier.ts';

/** The registry's /metrics, and the observers that feed them, so the parts being measured hold no metrics of their own. */
export function registryMetrics(registry: Registry) {
  const metrics = createMetrics('registry');
  const checks = new prom.Counter({ name: 'registry_checks_total', help: 'Heartbeat checks by result', labelNames: ['result'], registers: [metrics] });
  const checkLatency = new prom.Histogram({
    name: 'registry_check_latency_seconds',
    help: 'Heartbeat check latency',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [metrics],
  });
  const patchesSent = new prom.Counter({ name: 'registry_patches_sent_total', help: 'Patches delivered', registers: [metrics] });
  const patchesStuck = new prom.Counter({
    name: 'registry_patches_failed_total',
    help: 'Patches not through after NOTIFY_RETRIES retries (they are still retried while the subscriber is up)',
    registers: [metrics],
  });
  const patchLatency = new prom.Histogram({
    name: 'registry_patch_latency_seconds',
    help: 'From a change to its patch being acknowledged',
    buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5],
    registers: [metrics],
  });
  new prom.Gauge({
    name: 'registry_instances',
    help: 'Registered instances by service and state',
    labelNames: ['service', 'state'],
    registers: [metrics],
    collect() {
      const counts = new Map<string, { up: number; down: number }>();
      for (const record of registry.all()) {
        let count = counts.get(record.serviceName);
        if (!count) counts.set(record.serviceName, (count = { up: 0, down: 0 }));
        count[record.state]++;
      }
      // A service that left is no longer a series.
      this.reset();
      for (const [service, { up, down }] of counts) {
        this.set({ service, state: 'up' }, up);
        this.set({ service, state: 'down' }, down);
      }
    },
  });
  const registrations = new prom.Counter({ name: 'registry_registrations_total', help: 'Registrations accepted', registers: [metrics] });
  const checkObserver: CheckObserver = {
    onCheck(_record, result) {
      checks.inc({ result: result.ok ? 'ok' : result.kind });
      checkLatency.observe(result.latencyMs / 1000);
    },
  };
  const notifierObserver: NotifierObserver = {
    onSent(ms) {
      patchesSent.inc();
      patchLatency.observe(ms / 1000);
    },
    onFailed: () => patchesStuck.inc(),
  };
  return { metrics, registrations, checkObserver, notifierObserver };
}
