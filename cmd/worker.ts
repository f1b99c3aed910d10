import { startWorker } from '../imageservice/worker/worker.ts';
import { fromCommandLine, WORKER_SERVICE } from '../imageservice/worker/config.ts';
import { runMain } from '../shared/main.ts';
import { growHeapForImages } from '../imageservice/heapGrowth.ts';

growHeapForImages();
await runMain(WORKER_SERVICE, async () => startWorker(fromCommandLine()));
