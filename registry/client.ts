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
  private readonly http: AxiosInstance;
  readonly registryUrl: string;

  constructor(options: RegistryClientOptions) {
    this.registryUrl = options.registryUrl.replace(/\/+$/, '');
    this.http = axios.create({
      baseURL: this.registryUrl,
      timeout: options.timeoutMs ?? 5000,
      headers: options.token ? { Authorization: `Bearer ${options.token}` } : {},
      maxContentLength: 64 * 1024 * 1024,
    });
  }

  private async call<T>(run: (http: AxiosInstance) => Promise<{ data: T }>): Promise<T> {
    try {
      return (await run(this.http)).data;
    } catch (err) {
      throw toRegistryError(err, this.registryUrl);
    }
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
   * Follows GET /services/stream until the signal aborts, calling onEvent for each event.
   * Resolves when the stream ends; rejects with a RegistryError when it can't connect.
   */
  async watch(onEvent: (event: RegistryEvent) => void, signal: AbortSignal, names?: string[]): Promise<void> {
    const query = names?.length ? `?name=${encodeURIComponent(names.join(','))}` : '';
    try {
      await readEventStream(`${this.registryUrl}/services/stream${query}`, (event) => onEvent(JSON.parse(event.data) as RegistryEvent), signal);
    } catch (err) {
      if (!(err instanceof EventStreamError)) throw err;
      if (err.phase === 'connect') throw new RegistryError(0, 'unreachable', `registry at ${this.registryUrl} is unreachable`);
      if (err.phase === 'status') throw new RegistryError(err.status, 'http_error', err.message);
      throw new RegistryError(0, 'stream_lost', `lost the registry stream: ${err.message}`);
    }
  }
}
