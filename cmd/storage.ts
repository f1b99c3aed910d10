import { startStorage } from '../imageservice/storage/server.ts';
import { fromEnv, STORAGE_SERVICE } from '../imageservice/storage/config.ts';
import { runMain } from '../shared/main.ts';
import { growHeapForImages } from '../imageservice/heapGrowth.ts';

growHeapForImages();
await runMain(STORAGE_SERVICE, () => startStorage(fromEnv()));
