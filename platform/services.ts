import { registryDefaults } from '../registry/config.ts';
import { LOG_SERVICE, LOG_SERVICE_PORT } from '../logservice/config.ts';
import { EVENTS_DEFAULT_PORT, EVENTS_SERVICE } from '../events/config.ts';
import { GRADES_DEFAULT_PORT, GRADES_SERVICE } from '../grades/config.ts';
import { PORTAL_DEFAULT_PORT, PORTAL_SERVICE } from '../grades/portal/config.ts';
import { STORAGE_DEFAULT_PORT, STORAGE_SERVICE } from '../imageservice/storage/config.ts';
import { MASTER_DEFAULT_PORT, MASTER_SERVICE } from '../imageservice/master/config.ts';
import { WORKER_DEFAULT_PORT, WORKER_SERVICE } from '../imageservice/worker/config.ts';
import { FRONTEND_DEFAULT_PORT, FRONTEND_SERVICE } from '../imageservice/frontend/config.ts';

/** The platform's services: how to start each one and what it registers as. */
export interface PlatformService {
  /** The name used on the command line (--services, --port). */
  id: string;
  entry: string;
  /** What it registers as in the registry (undefined for the registry itself). */
  registersAs?: string;
  defaultPort: number;
  /** The page a person opens, if it has one. */
  page?: string;
  /** Options for node itself (the launcher and the benchmarks start it with them). */
  nodeOptions?: string[];
  /**
   * Services (ids) that must be up before it starts, so it finds them at once and never warns that they are missing.
   * Only what it warns about, or ships to: every stage adds a start-up of node to the time until the table.
   */
  after: string[];
}

/**
 * The log service churns through short-lived objects (each batch is parsed, checked and printed
 * again), and V8 grows its young generation to its 16 MB semi-space maximum under that. Since a batch
 * is let go before its fsync (logservice/ingest.ts), 8 MB semi-spaces measured peak RSS 145-152 MB in
 * bench:logs' intake against 187-188 MB at 4 MB, with no more CPU per line (more frequent scavenges
 * at 4 MB promoted batches still waiting for their fsync). Kept in step with the `logservice` npm script. It
 * can only go on node's command line (the semi-spaces are sized as the heap is made), where a V8 flag makes node
 * compile its own modules at start (shared/v8Flags.ts): 20 ms or so of the log service's start.
 */
export const LOG_SERVICE_NODE_OPTIONS = ['--max-semi-space-size=8'];

// Names and default ports come from each service's config.ts, so the launcher and the service agree.
export const PLATFORM_SERVICES: PlatformService[] = [
  { id: 'registry', entry: 'cmd/registry.ts', defaultPort: registryDefaults.port, page: 'registry dashboard', after: [] },
  { id: 'logservice', entry: 'cmd/logservice.ts', registersAs: LOG_SERVICE, defaultPort: LOG_SERVICE_PORT, page: 'log viewer', nodeOptions: LOG_SERVICE_NODE_OPTIONS, after: ['registry'] },
  { id: 'events', entry: 'cmd/events.ts', registersAs: EVENTS_SERVICE, defaultPort: EVENTS_DEFAULT_PORT, page: 'events (subscribers, queues, deliveries)', after: ['registry'] },
  { id: 'grades', entry: 'cmd/grades.ts', registersAs: GRADES_SERVICE, defaultPort: GRADES_DEFAULT_PORT, after: ['logservice', 'events'] },
  { id: 'portal', entry: 'cmd/portal.ts', registersAs: PORTAL_SERVICE, defaultPort: PORTAL_DEFAULT_PORT, page: 'teacher portal', after: ['logservice', 'events'] },
  { id: 'storage', entry: 'cmd/storage.ts', registersAs: STORAGE_SERVICE, defaultPort: STORAGE_DEFAULT_PORT, after: ['logservice', 'events'] },
  { id: 'master', entry: 'cmd/master.ts', registersAs: MASTER_SERVICE, defaultPort: MASTER_DEFAULT_PORT, after: ['logservice', 'events'] },
  // The worker waits quietly for its first master, so it starts beside it.
  { id: 'worker', entry: 'cmd/worker.ts', registersAs: WORKER_SERVICE, defaultPort: WORKER_DEFAULT_PORT, after: ['logservice', 'events'] },
  { id: 'frontend', entry: 'cmd/frontend.ts', registersAs: FRONTEND_SERVICE, defaultPort: FRONTEND_DEFAULT_PORT, page: 'image frontend', after: ['logservice', 'events'] },
];

export function platformService(id: string): PlatformService {
  const service = PLATFORM_SERVICES.find((s) => s.id === id);
  if (!service) throw new Error(`unknown service "${id}"; choose from ${PLATFORM_SERVICES.map((s) => s.id).join(', ')}`);
  return service;
}

/** What must be up before the service starts, among the services wanted: its `after`, and theirs when one is not run. */
export function startsAfter(service: PlatformService, wanted: string[]): string[] {
  const out = new Set<string>();
  const visit = (ids: string[]) => {
    for (const id of ids) {
      if (wanted.includes(id)) out.add(id);
      else visit(platformService(id).after);
    }
  };
  visit(service.after);
  return [...out];
}
