/**
 * The registry's instance events as log lines of service `registry`, so "when did X go down" is a
 * log query (GET /logs?service=registry&q=X). Subscribed balanced: one log instance stores each event.
 * A line is answered to the events service only once it is stored; a failed write answers 500, so the
 * event comes again.
 */
import type { EventHandler } from '../events/client.ts';
import type { EventEnvelope } from '../events/protocol.ts';
import type { InstanceEventPayload } from '../registry/eventsPublisher.ts';
import type { LogEntry } from './protocol.ts';

export const REGISTRY_EVENTS = 'instance.*';

/** What the log service needs: its store's append (LogStore fits). */
export interface EntrySink {
  append(entries: LogEntry[], receivedAt: string): Promise<void>;
}

const WORDS: Record<string, string> = {
  registered: 'registered',
  up: 'is up',
  down: 'went down',
  evicted: 'was evicted',
  deregistered: 'deregistered',
};

const text = (value: unknown, fallback: string) => (typeof value === 'string' && value !== '' ? value.slice(0, 2000) : fallback);

/** One instance event as the log line it becomes. */
export function instanceEventEntry(event: EventEnvelope): LogEntry {
  const payload = (event.payload && typeof event.payload === 'object' ? event.payload : {}) as Partial<InstanceEventPayload>;
  const kind = event.topic.slice('instance.'.length);
  const name = text(payload.serviceName, 'an instance');
  const url = text(payload.serviceURL, '?');
  const reason = text(payload.reason, '');
  return {
    time: text(payload.time, event.time),
    level: kind === 'down' || kind === 'evicted' ? 'warn' : 'info',
    service: 'registry',
    message: `${name} at ${url} ${WORDS[kind] ?? kind}${reason && reason !== WORDS[kind] ? `: ${reason}` : ''}`,
    event: event.topic,
    eventId: event.id,
    serviceName: payload.serviceName,
    serviceURL: payload.serviceURL,
    instanceId: payload.instanceId,
    reason: payload.reason,
  };
}

/** The handler to subscribe (withEvents' balanced: { [REGISTRY_EVENTS]: … }). */
export function registryEventsHandler(sink: EntrySink): EventHandler {
  return (event) => sink.append([instanceEventEntry(event)], new Date().toISOString());
}
