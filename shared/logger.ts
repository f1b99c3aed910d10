import { styleText } from 'node:util';
import winston from 'winston';
import { currentRequestId } from './requestContext.ts';

export type Logger = winston.Logger;

/** Stamps every line with the current request id, when there is one. */
const requestIdFormat = winston.format((info) => {
  if (info.requestId === undefined) {
    const requestId = currentRequestId();
    if (requestId) info.requestId = requestId;
  }
  return info;
});

/**
 * winston's timestamp format, with the ISO text made once per millisecond: a busy service logs
 * dozens of lines in the same millisecond, and formatting the date was the largest single cost of
 * a line on its way to the log shipper (about a fifth of it).
 */
let stampedMs = -1;
let stampedIso = '';
const timestampFormat = winston.format((info) => {
  const now = Date.now();
  if (now !== stampedMs) {
    stampedMs = now;
    stampedIso = new Date(now).toISOString();
  }
  info.timestamp = stampedIso;
  return info;
});

/**
 * Colour only for a person at a terminal whose hasColors() says so (it honours NO_COLOR, FORCE_COLOR and
 * TERM=dumb), and never with --no-color on the command line. The same rule as the CLI's colourWanted (shared/cli.ts).
 */
export function colorEnabled(stream: { isTTY?: boolean; hasColors?: () => boolean }, argv: string[] = process.argv): boolean {
  return stream.isTTY === true && typeof stream.hasColors === 'function' && stream.hasColors() && !argv.includes('--no-color');
}

export type ColorName = 'red' | 'yellow' | 'green' | 'blue' | 'magenta' | 'cyan' | 'gray' | 'greenBright' | 'blueBright' | 'magentaBright' | 'cyanBright';

/** Always paints: whether to colour was decided already (colorEnabled), for the stream the line goes to. */
export function paint(color: ColorName, text: string): string {
  return styleText(color, text, { validateStream: false });
}

/** WARN yellow and ERROR red, so they stand out among the info lines. */
export function paintLevel(level: string): string {
  if (level === 'error') return paint('red', level);
  return level === 'warn' ? paint('yellow', level) : level;
}

const consoleLine = (color: boolean) =>
  winston.format.printf((info) => {
    const { timestamp, level, message, service, requestId, ...meta } = info;
    const rid = requestId ? ` (${String(requestId).slice(0, 8)})` : '';
    const rest = Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : '';
    return `${timestamp} ${color ? paintLevel(level) : level} [${service}]${rid} ${message}${rest}`;
  });

export interface LoggerOptions {
  level?: string;
  /** Console output format: "text" for people, "json" for machines. */
  format?: 'text' | 'json';
}

/** A winston logger for one service. More transports (the remote log service) are added with logger.add(). */
export function createLogger(service: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const format = options.format ?? (process.env.LOG_FORMAT === 'json' ? 'json' : 'text');
  return winston.createLogger({
    level,
    defaultMeta: { service },
    format: winston.format.combine(requestIdFormat(), timestampFormat()),
    transports: [
      new winston.transports.Console({
        format: format === 'json' ? winston.format.json() : consoleLine(colorEnabled(process.stdout)),
      }),
    ],
  });
}
