import { startFrontend } from '../imageservice/frontend/server.ts';
import { fromEnv, FRONTEND_SERVICE } from '../imageservice/frontend/config.ts';
import { runMain } from '../shared/main.ts';
import { growHeapForImages } from '../imageservice/heapGrowth.ts';

growHeapForImages();
await runMain(FRONTEND_SERVICE, () => startFrontend(fromEnv()));
