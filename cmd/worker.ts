import { startWorker } from '../imageservice/worker/worker.ts';
import { fromCommandLine, WORKER_SERVICE } from '../imageservice/worker/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(WORKER_SERVICE, async () => startWorker(fromCommandLine()));
