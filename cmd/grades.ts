import { startGrades } from '../grades/server.ts';
import { fromEnv, GRADES_SERVICE } from '../grades/config.ts';
import { runMain } from '../shared/main.ts';

await runMain(GRADES_SERVICE, () => startGrades(fromEnv()));
