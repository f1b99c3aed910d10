import { startFrontend } from '../imageservice/frontend/server.ts';
import { fromEnv, FRONTEND_SERVICE } from '../imageservice/frontend/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(FRONTEND_SERVICE, () => startFrontend(fromEnv()));
