import { startLogService } from '../logservice/server.ts';
import { fromEnv, LOG_SERVICE } from '../logservice/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(LOG_SERVICE, () => startLogService(fromEnv()));
