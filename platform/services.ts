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
}

export const PLATFORM_SERVICES: PlatformService[] = [
  { id: 'registry', entry: 'cmd/registry.ts', defaultPort: 3000, page: 'registry dashboard' },
  { id: 'logservice', entry: 'cmd/logservice.ts', registersAs: 'log', defaultPort: 4000, page: 'log viewer' },
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
