/**
 * The log service's wire types: what POST /log takes and answers, and what GET /logs returns.
 * Both ends (logservice/server.ts and logservice/client.ts) import these.
 */

/** One log line as it travels and as it is stored (JSON lines). Extra fields are the line's metadata. */
export interface LogEntry {
  time: string;
  level: string;
  service: string;
  message: string;
  requestId?: string;
  /** Stamped by the log service when it accepted the line. */
  receivedAt?: string;
  /** The log service's own order number for the line (increasing, survives restarts). */
  seq?: number;
  [meta: string]: unknown;
}

/** The fields a sender may set (`timestamp` is winston's name for `time`); the rest of its keys are metadata. */
export const SENT_FIELDS = ['time', 'timestamp', 'level', 'service', 'message', 'requestId'] as const;
/** The fields an entry owns once stored: what was sent (with `time`), and what the log service stamps on it. */
export const ENTRY_FIELDS = ['time', 'level', 'service', 'message', 'requestId', 'receivedAt', 'seq'] as const;

/** A batch id the log service remembers for a while, so a retried POST is stored once. */
export const BATCH_ID_HEADER = 'x-log-batch-id';
/** Who is sending, when the entries themselves don't say (e.g. the plain-text format). */
export const SERVICE_NAME_HEADER = 'x-service-name';
export const INSTANCE_ID_HEADER = 'x-instance-id';

export const NDJSON = 'application/x-ndjson';

/** A line the log service refused, by its 1-based position in the body. */
export interface RejectedLine {
  line: number;
  reason: string;
}

/** 202: every line was accepted. */
export interface LogAccepted {
  accepted: number;
  /** True when this batch id was seen before: nothing was stored twice. */
  duplicate?: boolean;
}

/** 400: the error, plus what was accepted anyway and which lines were refused. */
export interface LogRejected {
  error: { code: string; message: string };
  accepted: number;
  rejected: RejectedLine[];
  duplicate?: boolean;
}

export interface LogQueryResult {
  /** Oldest first: the newest `limit` matching lines, in time order. */
  entries: LogEntry[];
  /** True when the files were not scanned to the end (scan budget spent). */
  truncated: boolean;
  /** Services the query named that no stored line carries (GET /logs/labels lists those that do). */
  unknownServices?: string[];
}

/** GET /logs/labels: what a query's service and level can be. */
export interface LogLabels {
  /** Services with lines, sorted by name. */
  services: string[];
  /** The levels `level` takes, most severe first. */
  levels: string[];
  /** True when the files were not all read, so a service with only older lines may be missing. */
  partial: boolean;
}

export interface VolumeBucket {
  /** The bucket's start (ISO 8601); it holds times up to the next bucket's start. */
  time: string;
  count: number;
  /** Counts by level (LEVELS names; a line of another level counts under the one it ranks with). */
  levels: Record<string, number>;
}

/** GET /logs/volume: matching lines per time bucket. */
export interface LogVolume {
  from: string;
  to: string;
  stepMs: number;
  buckets: VolumeBucket[];
  total: number;
  /** True when the files were not read to the end (the scan budget was spent). */
  truncated: boolean;
}

/** Levels in order of severity (winston's npm levels); lines may carry others. */
export const LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;
