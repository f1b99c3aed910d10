import { portalConfig, startPortal, PORTAL_SERVICE } from '../grades/portal/server.ts';
import { runMain } from '../shared/main.ts';

await runMain(PORTAL_SERVICE, () => startPortal(portalConfig()));
