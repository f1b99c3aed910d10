import { startMaster } from '../imageservice/master/server.ts';
import { fromEnv, MASTER_SERVICE } from '../imageservice/master/config.ts';
import { runMain } from '../shared/main.ts';
import { growHeapForImages } from '../imageservice/heapGrowth.ts';

growHeapForImages();
await runMain(MASTER_SERVICE, () => startMaster(fromEnv()));
