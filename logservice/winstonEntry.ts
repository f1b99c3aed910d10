/** A winston info object as a log entry in the wire shape (logservice/protocol.ts). */
import { SENT_FIELDS, type LogEntry } from './protocol.ts';

/** winston's info keys that become the entry's own fields (its timestamp is the time); the rest are metadata. */
const OWN_KEYS: ReadonlySet<string> = new Set(SENT_FIELDS);

function errorToJson(value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}

export function toEntry(info: Record<string, unknown>, serviceName: string): LogEntry {
  const message = info.message;
  const entry: LogEntry = {
    time: typeof info.timestamp === 'string' ? info.timestamp : new Date().toISOString(),
    level: String(info.level),
    service: typeof info.service === 'string' ? info.service : serviceName,
    message: typeof message === 'string' ? message : message instanceof Error ? message.message : JSON.stringify(message) ?? String(message),
  };
  if (typeof info.requestId === 'string') entry.requestId = info.requestId;
  for (const key in info) if (!OWN_KEYS.has(key)) entry[key] = errorToJson(info[key]);
  return entry;
}

/**
 * The entry to ship for a line: winston's info object already is a valid entry (timestamp is read as
 * time), so it ships as it is; only odd ones (no string message, no service) are copied into shape.
 */
export function shippable(info: Record<string, unknown>, serviceName: string): LogEntry {
  const ready = typeof info.message === 'string' && typeof info.service === 'string';
  return ready ? (info as LogEntry) : toEntry(info, serviceName);
}
