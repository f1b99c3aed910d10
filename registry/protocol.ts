/**
 * The registry's wire protocol: what services send and what they get back.
 * Both ends (registry/server.ts and registry/client.ts; the patch: registry/notifier.ts and shared/) import these. See docs/protocol.md.
 */
import { z } from 'zod';
import { canonicalKeys, httpUrl } from '../shared/validate.ts';

export const serviceName = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-"');

export const registrationSchema = z
  .object({
    serviceName,
    serviceURL: httpUrl,
    requiredServices: z.array(serviceName).max(64).nullish().transform((v) => [...new Set(v ?? [])]),
    serviceUpdateURL: z.union([httpUrl, z.literal('')]).nullish().transform((v) => v || undefined),
    heartbeatURL: z.union([httpUrl, z.literal('')]).nullish().transform((v) => v || undefined),
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"')
      .optional(),
    metadata: z.record(z.string().max(128), z.string().max(1024)).optional(),
    ttlSeconds: z.number().positive().max(3600).optional(),
  })
  .superRefine((reg, ctx) => {
    if (!reg.heartbeatURL && reg.ttlSeconds === undefined) {
      ctx.addIssue({ code: 'custom', path: ['heartbeatURL'], message: 'is required unless ttlSeconds (a lease) is given' });
    }
    if (reg.requiredServices.length > 0 && !reg.serviceUpdateURL && reg.ttlSeconds === undefined) {
      ctx.addIssue({ code: 'custom', path: ['serviceUpdateURL'], message: 'is required when requiredServices is not empty' });
    }
    if (reg.metadata && Object.keys(reg.metadata).length > 32) {
      ctx.addIssue({ code: 'custom', path: ['metadata'], message: 'has more than 32 entries' });
    }
  });

export type RegistrationInput = z.input<typeof registrationSchema>;
export type Registration = z.output<typeof registrationSchema>;

/** The field names a registration may use, in their canonical spelling (matched case-insensitively). */
export const registrationFields = [
  'serviceName',
  'serviceURL',
  'requiredServices',
  'serviceUpdateURL',
  'heartbeatURL',
  'instanceId',
  'metadata',
  'ttlSeconds',
] as const;

/** name -> live provider URLs */
export type ProviderMap = Record<string, string[]>;

export interface RegisterResponse {
  instanceId: string;
  /** Live providers of each required service, at the moment of registration. */
  providers: ProviderMap;
  /** The seq of the last patch sent to this instance before this answer (0: none); the next patch is seq + 1. */
  seq: number;
  heartbeatIntervalMs: number;
  leaseExpiresAt?: string;
}

export interface LeaseResponse {
  instanceId: string;
  leaseExpiresAt: string;
  providers: ProviderMap;
}

/** One provider in a patch; a URL that is not http(s) would be called by svc.client(), so it is refused. Go spells it Name, URL. */
export const patchEntrySchema = z.preprocess(
  (raw) => canonicalKeys(raw, ['name', 'url']),
  z.object({ name: z.string().min(1).max(256), url: httpUrl }),
);

/**
 * What a service accepts on its serviceUpdateURL. Go's registry sends PascalCase names, null lists and no
 * seq; an empty body (which the JSON parser reads as {}) is not a patch.
 */
export const patchSchema = z
  .object({
    added: z.array(patchEntrySchema).nullish(),
    removed: z.array(patchEntrySchema).nullish(),
    /** Per subscriber, increasing by one per patch; a gap means a patch was lost: re-sync. */
    seq: z.number().int().nonnegative().optional(),
  })
  .superRefine((patch, ctx) => {
    if (patch.added === undefined && patch.removed === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'a patch needs "added" or "removed"' });
  });

export type PatchEntry = z.output<typeof patchEntrySchema>;
export type PatchBody = z.output<typeof patchSchema>;
/** What this registry POSTs: both lists and the seq, always. Go's decoder accepts these camelCase names. */
export type Patch = { [K in keyof PatchBody]-?: NonNullable<PatchBody[K]> };

export type InstanceState = 'up' | 'down';

/** Why an instance is down, as data: a code to switch on and a message for people (its time is downSince). */
export interface DownReason {
  code: 'connection_refused' | 'connection_reset' | 'connection_failed' | 'timeout' | 'bad_status' | 'lease_expired';
  message: string;
  /** The status it answered, for bad_status. */
  status?: number;
}

/**
 * One step of an instance's life, as its history keeps it (at most 32, the newest last). `restarted`: a new
 * process took this place (the same URL without its id, the same id at a new URL, or a new instance of the
 * service on the same host where one was down); `previous` names what it replaced.
 */
export interface Transition<Time> {
  at: Time;
  event: 'registered' | 're-registered' | 'restarted' | 'up' | 'down';
  state: InstanceState;
  reason?: DownReason;
  previous?: { instanceId: string; serviceURL: string };
}

/**
 * One instance's fields, with its times as `Time`: epoch milliseconds where the registry keeps it
 * (InstanceRecord), ISO strings on the wire (InstanceView); one list, so the two cannot drift apart.
 */
export interface InstanceFields<Time> {
  instanceId: string;
  serviceName: string;
  serviceURL: string;
  serviceUpdateURL?: string;
  heartbeatURL?: string;
  requiredServices: string[];
  metadata: Record<string, string>;
  state: InstanceState;
  registeredAt: Time;
  lastCheckAt?: Time;
  lastLatencyMs?: number;
  consecutiveFailures: number;
  lastError?: string;
  /** Set while down: why it went down. */
  downReason?: DownReason;
  downSince?: Time;
  upSince?: Time;
  /** The last time it answered (a check, a registration, a lease renewal); not saved: unset until it answers this registry process. */
  lastSeenAt?: Time;
  ttlSeconds?: number;
  leaseExpiresAt?: Time;
  /** How many times a new process took this place (see Transition); 0 when unset. */
  restarts?: number;
  /** The instance whose place it took when it was registered. */
  predecessorId?: string;
}

/** One instance as the admin listing (GET /services) shows it. */
export type InstanceView = InstanceFields<string>;

export interface ServicesListing {
  instances: InstanceView[];
}

/** The check fields of one instance, as a `checked` summary lists them. */
export type CheckedInstance = Pick<InstanceView, 'instanceId' | 'serviceName' | 'state' | 'lastCheckAt' | 'lastLatencyMs' | 'consecutiveFailures' | 'lastError'>;

/**
 * At most one a second: how many checks ran (and failed) since the last one, how many instances are up
 * and down, and only the instances whose failures or error changed (at most 100; `more` counts the rest).
 */
export interface CheckSummary {
  type: 'checked';
  at: string;
  checks: number;
  failed: number;
  up: number;
  down: number;
  instances: CheckedInstance[];
  more?: number;
}

/** GET /services/:instanceId/history. */
export interface InstanceHistory {
  instance: InstanceView;
  transitions: Transition<string>[];
}

/**
 * Server-sent events on GET /services/stream. `previous` (on updated) is the id and URL it had before;
 * `replacedBy` (on evicted) is the instance that took its place.
 */
export type RegistryEvent =
  | { type: 'snapshot'; instances: InstanceView[] }
  | { type: 'registered' | 'updated' | 'up' | 'down' | 'deregistered' | 'evicted'; instance: InstanceView; previous?: { instanceId: string; serviceURL: string }; replacedBy?: string }
  | CheckSummary;
