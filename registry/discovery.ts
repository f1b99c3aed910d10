/**
 * GET /services/prometheus: Prometheus's HTTP service discovery (`http_sd_configs`), a JSON array of
 * `{targets: ["host:port"], labels}`, one per up instance (and per registry replica), each scraped at
 * its serviceURL's path + /metrics. Metadata becomes `__meta_switchboard_metadata_<key>` labels, for
 * relabelling, as Consul's discovery does with its node meta.
 */
import type { InstanceRecord } from './registry.ts';

export interface DiscoveryTarget {
  targets: string[];
  labels: Record<string, string>;
}

const labelName = (key: string) => key.replace(/[^A-Za-z0-9_]/g, '_');

function target(url: string, labels: Record<string, string>): DiscoveryTarget | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
  const path = parsed.pathname.replace(/\/+$/, '');
  return {
    // hostname keeps an IPv6 address in brackets, as host:port wants it.
    targets: [`${parsed.hostname}:${port}`],
    labels: { __metrics_path__: `${path}/metrics`, __scheme__: parsed.protocol.slice(0, -1), ...labels },
  };
}

/** Every up instance, and the registry itself (`registries`: each replica's id and URL). */
export function prometheusTargets(instances: Iterable<InstanceRecord>, registries: { id: string; url: string }[]): DiscoveryTarget[] {
  const out: DiscoveryTarget[] = [];
  for (const { id, url } of registries) {
    const entry = target(url, { service: 'registry', instance_id: id });
    if (entry) out.push(entry);
  }
  for (const record of instances) {
    if (record.state !== 'up') continue;
    const labels: Record<string, string> = { service: record.serviceName, instance_id: record.instanceId };
    for (const [key, value] of Object.entries(record.metadata)) labels[`__meta_switchboard_metadata_${labelName(key)}`] = value;
    const entry = target(record.serviceURL, labels);
    if (entry) out.push(entry);
  }
  return out;
}
