import axios, { type AxiosInstance } from 'axios';
import type {
  InstanceView,
  LeaseResponse,
  RegisterResponse,
  RegistrationInput,
  RegistryEvent,
  ServicesListing,
} from './protocol.ts';
import { EventStreamError, readEventStream } from '../shared/sse.ts';
import { ApiError, classifyUpstream } from '../shared/apiError.ts';

/** The registry answered with an error (status and code from its JSON error), or could not be reached (status 0). */
export class RegistryError extends ApiError {
  override readonly name = 'RegistryError';
}

export interface RegistryClientOptions {
  /** One registry, or replicas as a comma-separated list (REGISTRY_URL=a,b,c). */
  registryUrl: string;
  token?: string;
  timeoutMs?: number;
}

function toRegistryError(err: unknown, registryUrl: string): RegistryError {
  const failure = classifyUpstream(err);
  if (failure?.kind === 'answered') return RegistryError.answered(failure, 'registry');
  if (failure && failure.kind !== 'no_provider') return RegistryError.unreachable(failure, `registry at ${registryUrl}`);
  return new RegistryError(0, 'unreachable', (err as Error).message);
}

/** The typed client of the registry's HTTP protocol (docs/protocol.md). */
export class RegistryClient {
  /** Every replica given; calls go to the one that answered last and move on to the next when it doesn't. */
  readonly registryUrls: string[];
  private readonly clients: AxiosInstance[];
  private current = 0;

  constructor(options: RegistryClientOptions) {
    this.registryUrls = options.registryUrl.split(',').map((url) => url.trim().replace(/\/+$/, '')).filter(Boolean);
    this.clients = this.registryUrls.map((baseURL) =>
      axios.create({
        baseURL,
        timeout: options.timeoutMs ?? 5000,
        headers: options.token ? { Authorization: `Bearer ${options.token}` } : {},
        maxContentLength: 64 * 1024 * 1024,
      }),
    );
  }

  /** The registry (replica) calls go to now. */
  get registryUrl(): string {
    return this.registryUrls[this.current];
  }

  private async call<T>(run: (http: AxiosInstance) => Promise<{ data: T }>): Promise<T> {
    let failure: RegistryError | undefined;
    for (let tried = 0; tried < this.clients.length; tried++) {
      const index = (this.current + tried) % this.clients.length;
      try {
        const { data } = await run(this.clients[index]);
        this.current = index;
        return data;
      } catch (err) {
        failure = toRegistryError(err, this.registryUrls[index]);
        // Not reached, or a replica that can't save (its etcd is away): the next replica may do.
        if (failure.status !== 0 && failure.status !== 503) throw failure;
      }
    }
    throw failure!;
  }

  register(registration: RegistrationInput): Promise<RegisterResponse> {
    return this.call((http) => http.post<RegisterResponse>('/services', registration));
  }

  deregister(serviceURLOrInstanceId: string): Promise<{ deregistered: InstanceView }> {
    if (/^https?:\/\//.test(serviceURLOrInstanceId)) {
      return this.call((http) =>
        http.delete('/services', { data: serviceURLOrInstanceId, headers: { 'content-type': 'text/plain' } }),
      );
    }
    return this.call((http) => http.delete(`/services/${encodeURIComponent(serviceURLOrInstanceId)}`));
  }

  renewLease(instanceId: string): Promise<LeaseResponse> {
    return this.call((http) => http.put<LeaseResponse>(`/services/${encodeURIComponent(instanceId)}/lease`));
  }

  async list(names?: string[]): Promise<InstanceView[]> {
    const listing = await this.call((http) =>
      http.get<ServicesListing>('/services', { params: names?.length ? { name: names.join(',') } : {} }),
    );
    return listing.instances;
  }

  /** Up providers of each name, as a re-sync needs them. */
  async providers(names: string[]): Promise<Record<string, string[]>> {
    const instances = names.length ? await this.list(names) : [];
    const map: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (const instance of instances) if (instance.state === 'up') map[instance.serviceName]?.push(instance.serviceURL);
    return map;
  }

  /**
   * Follows GET /services/stream until the signal aborts, calling onEvent for each event, from the replica
   * calls go to, or the next one that answers when it doesn't (as calls move on). Resolves when the stream
   * ends; rejects with a RegistryError when no replica can be followed, or the stream was lost.
   */
  async watch(onEvent: (event: RegistryEvent) => void, signal: AbortSignal, names?: string[]): Promise<void> {
    const query = names?.length ? `?name=${encodeURIComponent(names.join(','))}` : '';
    let failure: RegistryError | undefined;
    for (let tried = 0; tried < this.registryUrls.length; tried++) {
      const index = (this.current + tried) % this.registryUrls.length;
      const url = this.registryUrls[index];
      try {
        await readEventStream(`${url}/services/stream${query}`, (event) => {
          this.current = index;
          onEvent(JSON.parse(event.data) as RegistryEvent);
        }, signal);
        return;
      } catch (err) {
        if (!(err instanceof EventStreamError)) throw err;
        if (err.phase === 'stream') throw new RegistryError(0, 'stream_lost', `lost the registry stream: ${err.message}`);
        failure = err.phase === 'connect' ? new RegistryError(0, 'unreachable', `registry at ${url} is unreachable`) : new RegistryError(err.status, 'http_error', err.message);
        // Not reached, or a replica that can't serve now (its etcd is away): the next replica may do.
        if (err.phase === 'status' && err.status !== 503) throw failure;
      }
    }
    throw failure!;
  }
}
