import { startLogService } from '../logservice/server.ts';
import { logServiceConfig } from '../logservice/config.ts';
import { runMain } from '../shared/main.ts';

await runMain('log', () => startLogService(logServiceConfig()));
