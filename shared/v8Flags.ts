/**
 * V8 flags a service sets on itself as it starts, instead of on node's command line. node checks the code
 * cache of its own modules against V8's flags: with a flag on the command line it compiled its internals from
 * source at every start, 40-55 ms more CPU per service (docs/benchmarks.md, platform footprint). Set from the
 * service's own entry point, once node has loaded them, a flag costs nothing at start. Only flags V8 reads as
 * it runs mean anything here (the heap's growth does; its space sizes, fixed at start, do not). A flag already
 * on the command line or in NODE_OPTIONS is left as it was given there.
 */
import v8 from 'node:v8';

/** Sets each flag (`--name=value` or `--name`) that node's command line does not already give. */
export function setV8Flags(flags: string[]): void {
  for (const flag of flagsToSet(flags, process.execArgv, process.env.NODE_OPTIONS ?? '')) v8.setFlagsFromString(flag);
}

/** The flags whose names neither node's arguments nor NODE_OPTIONS give. */
export function flagsToSet(flags: string[], execArgv: string[], nodeOptions: string): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].filter((arg) => arg.startsWith('--')).map(flagName));
  return flags.filter((flag) => !given.has(flagName(flag)));
}

/** The flag's name as V8 reads it, where `_` and `-` are the same. */
function flagName(arg: string): string {
  return arg.split('=')[0].replace(/_/g, '-');
}
