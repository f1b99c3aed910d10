import { startEvents } from '../events/server.ts';
import { fromEnv, EVENTS_SERVICE } from '../events/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(EVENTS_SERVICE, () => startEvents(fromEnv()));
