import { startGrades, GRADES_DEFAULT_PORT, GRADES_SERVICE } from '../grades/server.ts';
import { serviceConfig } from '../shared/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(GRADES_SERVICE, () => startGrades({ config: serviceConfig(GRADES_SERVICE, GRADES_DEFAULT_PORT) }));
