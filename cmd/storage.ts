import { startStorage } from '../imageservice/storage/server.ts';
import { fromEnv, STORAGE_SERVICE } from '../imageservice/storage/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(STORAGE_SERVICE, () => startStorage(fromEnv()));
