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
}

/**
 * The log service churns through short-lived objects (each batch is parsed, checked and printed
 * again), and V8 grows its young generation to its 16 MB semi-space maximum under that. bench:logs
 * measured peak RSS 205-213 MB with the default, 195-201 MB with 8 MB semi-spaces and 183 MB with
 * 4 MB, all well above 100,000 lines/s (more frequent scavenges cost some throughput: 116k lines/s
 * at 4 MB against 120-139k in runs at 8 MB). Kept in step with the `logservice` npm script.
 */
export const LOG_SERVICE_NODE_OPTIONS = ['--max-semi-space-size=4'];

export const PLATFORM_SERVICES: PlatformService[] = [
  { id: 'registry', entry: 'cmd/registry.ts', defaultPort: 3000, page: 'registry dashboard' },
  { id: 'logservice', entry: 'cmd/logservice.ts', registersAs: 'log', defaultPort: 4000, page: 'log viewer', nodeOptions: LOG_SERVICE_NODE_OPTIONS },
  { id: 'events', entry: 'cmd/events.ts', registersAs: 'events', defaultPort: 3004 },
  { id: 'grades', entry: 'cmd/grades.ts', registersAs: 'grades', defaultPort: 6000 },
  { id: 'portal', entry: 'cmd/portal.ts', registersAs: 'portal', defaultPort: 5000, page: 'teacher portal' },
  { id: 'storage', entry: 'cmd/storage.ts', registersAs: 'imagestorage', defaultPort: 3002 },
  { id: 'master', entry: 'cmd/master.ts', registersAs: 'imagemaster', defaultPort: 3003 },
  { id: 'worker', entry: 'cmd/worker.ts', registersAs: 'imageworker', defaultPort: 0 },
  { id: 'frontend', entry: 'cmd/frontend.ts', registersAs: 'imagefrontend', defaultPort: 8080, page: 'image frontend' },
];

export function platformService(id: string): PlatformService {
  const service = PLATFORM_SERVICES.find((s) => s.id === id);
  if (!service) throw new Error(`unknown service "${id}"; choose from ${PLATFORM_SERVICES.map((s) => s.id).join(', ')}`);
  return service;
}
