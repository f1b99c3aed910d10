import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program in the project's folder with extra environment, and returns what it printed and its exit code. */
export function runProgram(file: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000, inherited: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, env: { ...inherited, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the admin CLI (cmd/cli.ts) as a person would, and returns what it printed and its exit code. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return runProgram(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), ...args], env, timeoutMs);
}

/**
 * Runs `npx --no -- switchboard …`: the package's bin, as the README shows it (--no: never fetch a package;
 * --: what follows is the command's, even options npx has too, such as --version and --json).
 */
export function runNpx(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return runProgram('npx', ['--no', '--', 'switchboard', ...args], env, timeoutMs);
}

/** util-linux script(1), which gives a command a terminal of its own; tests that need a TTY skip without it. */
export const SCRIPT_PATH = '/usr/bin/script';
export const terminalAvailable = (): boolean => fs.existsSync(SCRIPT_PATH);

/** Runs the CLI with stdout and stderr on a terminal (a pty from script(1)); `stdout` holds all it drew. */
export function runCliInTerminal(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, '--import', 'tsx', path.join(ROOT, 'cmd/cli.ts'), ...args].map(quote).join(' ');
  // -q: no "Script started" lines; -e: its exit code is the command's; -c: the command; /dev/null: no typescript file.
  // A terminal as a person's: node counts colours by TERM, and gives none at all where CI is set (as CI runs this).
  const { CI: _ci, ...inherited } = process.env;
  return runProgram(SCRIPT_PATH, ['-qec', command, '/dev/null'], { TERM: 'xterm-256color', ...env }, timeoutMs, inherited);
}

/** A stack trace line, which a person should never see. */
export const STACK_LINE = /^\s+at .+\(.+:\d+:\d+\)$/m;
