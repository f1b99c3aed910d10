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
 * Colour only for a person at a terminal, and never when they said no (https://no-color.org, or
 * --no-color on the command line).
 */
export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR && !argv.includes('--no-color');
}

export const COLORS = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, brightGreen: 92, brightBlue: 94, brightMagenta: 95, brightCyan: 96 } as const;
export type ColorName = keyof typeof COLORS;

export function paint(color: ColorName, text: string): string {
  return `\x1b[${COLORS[color]}m${text}\x1b[39m`;
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
