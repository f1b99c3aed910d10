/**
 * The events service's wire protocol: what publishers send, what subscribers receive, and how a
 * registered service declares its subscriptions. Both ends (events/server.ts and events/client.ts)
 * import these. See README, "The events service".
 */

/** The topic of POST /sendMessage bodies (the reference API has no topics) and of reference subscribers by default. */
export const MESSAGE_TOPIC = 'message';

/** Deliveries of the platform's own format: one event per line. */
export const NDJSON = 'application/x-ndjson';

/** Headers on every delivery. */
export const EVENT_ID_HEADER = 'x-event-id';
export const EVENT_TOPIC_HEADER = 'x-event-topic';
export const EVENT_SEQ_HEADER = 'x-event-seq';
/** Events this subscriber lost (queue bound or retention) since its previous delivery: a gap. */
export const DROPPED_HEADER = 'x-events-dropped';
/** Which of the events service's queues sent this: order and de-duplication hold per queue. */
export const SUBSCRIPTION_HEADER = 'x-events-subscription';
/** The journal's identity: a new one (lost data) starts the event ids again from 1. */
export const JOURNAL_HEADER = 'x-events-journal';

/**
 * Registry metadata a service registers with to subscribe (see subscriptionMetadata in client.ts):
 * comma-separated topic patterns, and the path of its event endpoint (default /event).
 */
export const METADATA_BROADCAST = 'events.broadcast';
export const METADATA_BALANCED = 'events.balanced';
export const METADATA_PATH = 'events.path';
export const DEFAULT_EVENT_PATH = '/event';

/** One event as a platform subscriber receives it (a line of a delivery) and as the live tail shows it. */
export interface EventEnvelope {
  /** Increasing across all topics, in publish order. */
  id: number;
  topic: string;
  /** Increasing by one per event of this topic. */
  seq: number;
  /** When the events service accepted it (ISO 8601). */
  time: string;
  /** The published JSON value; for a non-JSON sendMessage body, its text (or base64, see encoding). */
  payload: unknown;
  /** Present for non-JSON bodies: their content type. */
  contentType?: string;
  encoding?: 'base64';
}

/** One event of POST /publish (a single object or an array of them). */
export interface PublishInput {
  topic: string;
  payload?: unknown;
}

export interface PublishedRef {
  id: number;
  topic: string;
  seq: number;
}

/** 202 to POST /publish (and 200 to POST /sendMessage, with one event). */
export interface PublishAnswer {
  accepted: number;
  events: PublishedRef[];
}

export type SubscriberKind = 'address' | 'instance' | 'group';

/** One subscriber as GET /subscribers shows it. */
export interface SubscriberView {
  key: string;
  /** address: registerAndKeepAlive; instance: broadcast to one registered instance; group: balanced over a service. */
  kind: SubscriberKind;
  mode: 'broadcast' | 'balanced';
  /** host:port, the instance's URL, or the service's name. */
  target: string;
  topics: string[];
  /**
   * up: deliveries go out; down: waiting for the registry to see it up again; failing: retrying with
   * backoff; dropped: an address that stopped calling registerAndKeepAlive (its queue waits, within the retention window).
   */
  state: 'up' | 'down' | 'failing' | 'dropped';
  registeredAt: string;
  lastSeenAt?: string;
  /** The instances a group delivers to, with their state. */
  instances?: { url: string; state: 'up' | 'down' }[];
  queued: number;
  queuedBytes: number;
  delivered: number;
  dropped: number;
  retries: number;
  lastDeliveredAt?: string;
  lastError?: string;
}

export interface SubscribersListing {
  subscribers: SubscriberView[];
}

export interface TopicView {
  topic: string;
  /** The seq of its last event. */
  seq: number;
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*):(\d{1,5})$/;

/** Why an address is not host:port (a name or IP and a port from 1 to 65535), or undefined when it is. */
export function addressProblem(address: unknown): string | undefined {
  if (typeof address !== 'string' || address === '') return 'is required: ?address=host:port';
  if (address.length > 260) return 'is too long for host:port';
  const match = HOST_PORT.exec(address);
  if (!match) return `must be host:port (such as 127.0.0.1:9001 or localhost:9001), got ${JSON.stringify(address.slice(0, 80))}`;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return `has port ${port}; a port is from 1 to 65535`;
  return undefined;
}

/** Comma-separated patterns from metadata or a query parameter. */
export function splitPatterns(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}
