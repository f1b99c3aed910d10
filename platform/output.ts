import { paint, paintLevel, type ColorName } from '../shared/logger.ts';

/** Yellow and red are left to WARN and ERROR. */
const PALETTE: ColorName[] = ['cyan', 'green', 'blue', 'magenta', 'cyanBright', 'greenBright', 'blueBright', 'magentaBright'];
const PLATFORM = 'platform';
/** A service's console line: "<time> <level> [<service>] …" (shared/logger.ts). */
const LEVEL = /^(\S+ )(warn|error)( )/;

/** The launcher's output: every line behind its process's name, padded to one width, in colour on a terminal. */
export class PrefixedOutput {
  private readonly width: number;
  private readonly colors = new Map<string, ColorName>();

  constructor(
    names: string[],
    private readonly color: boolean,
    private readonly write: (line: string) => void,
  ) {
    this.width = Math.max(PLATFORM.length, ...names.map((n) => n.length));
    // One colour per service: the workers (imageworker-1, -2) share theirs.
    const services = [...new Set(names.map((n) => n.replace(/-\d+$/, '')))];
    services.forEach((service, i) => this.colors.set(service, PALETTE[i % PALETTE.length]));
  }

  /** A line a service printed. */
  line(name: string, text: string): void {
    const body = this.color ? text.replace(LEVEL, (_all, time: string, level: string, space: string) => `${time}${paintLevel(level)}${space}`) : text;
    this.write(`${this.prefix(name, this.colors.get(name.replace(/-\d+$/, '')))} ${body}`);
  }

  /** A line of the launcher's own. */
  platform(text: string): void {
    this.write(`${this.prefix(PLATFORM, 'gray')} ${text}`);
  }

  private prefix(name: string, color: ColorName | undefined): string {
    const tag = `[${name.padEnd(this.width)}]`;
    return this.color && color ? paint(color, tag) : tag;
  }
}
