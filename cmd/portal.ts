import { startPortal } from '../grades/portal/server.ts';
import { fromEnv, PORTAL_SERVICE } from '../grades/portal/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(PORTAL_SERVICE, () => startPortal(fromEnv()));
