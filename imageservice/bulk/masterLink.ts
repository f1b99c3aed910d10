/**
 * The CLI's way to the master through a long job: a call that finds no master (it restarted on another port, or
 * is not registered yet) or gets a 5xx looks the master up again in the registry and tries again with backoff,
 * until `patienceMs` has passed without an answer. Answers the caller must handle (4xx) pass through at once.
 */
import { EqualJitterBackoff } from '../../shared/backoff.ts';
import { classifyUpstream } from '../../shared/apiError.ts';
import { CliError, type CliContext } from '../../shared/cli.ts';
import { RegistryError } from '../../registry/client.ts';
import { MasterClient } from '../master/client.ts';
import { JobClient } from '../master/jobClient.ts';

export interface MasterClients {
  master: MasterClient;
  jobs: JobClient;
}

/** Whether another try may get through: nothing answered, or the master answered that it can't now. */
export function worthRetrying(err: unknown): boolean {
  if (err instanceof RegistryError) return err.unreachable;
  const failure = classifyUpstream(err);
  if (!failure) return false;
  return failure.kind !== 'answered' || failure.status >= 500 || failure.status === 429;
}

export class MasterLink {
  private clients: Promise<MasterClients> | undefined;

  constructor(
    private readonly ctx: CliContext,
    private readonly patienceMs: number,
    private readonly onWait: (why: string) => void = () => {},
  ) {}

  private connect(): Promise<MasterClients> {
    this.clients ??= this.ctx.service('imagemaster').then((http) => ({ master: new MasterClient(http), jobs: new JobClient(http) }));
    return this.clients;
  }

  /** Runs `call` against the master, again after a lookup while it is away. */
  async run<T>(what: string, call: (clients: MasterClients) => Promise<T>): Promise<T> {
    const backoff = new EqualJitterBackoff({ initialMs: 200, maxMs: 3000 });
    const deadline = Date.now() + this.patienceMs;
    for (;;) {
      try {
        return await call(await this.connect());
      } catch (err) {
        if (!worthRetrying(err)) throw err;
        this.clients = undefined;
        if (Date.now() > deadline) throw new CliError(`the master did not answer for ${Math.round(this.patienceMs / 1000)} s while ${what}: ${(err as Error).message}`);
        this.onWait(`the master is away (${(err as Error).message}); trying again`);
        await backoff.wait();
      }
    }
  }
}
