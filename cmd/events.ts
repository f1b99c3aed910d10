import { startEvents } from '../events/server.ts';
import { eventsConfig } from '../events/config.ts';
import { runMain } from '../shared/main.ts';

await runMain('events', () => startEvents(eventsConfig()));
