import { RegistryServer } from '../registry/server.ts';
import { registryConfig } from '../registry/config.ts';
import { runMain } from '../shared/main.ts';

await runMain('registry', () => new RegistryServer(registryConfig()).start());
