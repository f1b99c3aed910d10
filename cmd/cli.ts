import { runCli } from '../platform/cliProgram.ts';

await runCli();
