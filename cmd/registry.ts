import { RegistryServer } from '../registry/server.ts';
import { fromEnv } from '../registry/config.ts';
import { runMain } from '../shared/main.ts';

await runMain('registry', () => RegistryServer.open(fromEnv()).then((registry) => registry.start()));
