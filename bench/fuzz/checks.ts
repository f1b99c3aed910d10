/** What a good refusal looks like, and the record of every one that was not. */
import type { RawAnswer } from './raw.ts';

export interface Violation {
  service: string;
  category: string;
  what: string;
  problem: string;
}

export class Findings {
  readonly violations: Violation[] = [];
  /** Requests sent, by category. */
  readonly sent = new Map<string, number>();

  count(category: string): void {
    this.sent.set(category, (this.sent.get(category) ?? 0) + 1);
  }

  add(service: string, category: string, what: string, problem: string): void {
    this.violations.push({ service, category, what: what.length > 120 ? `${what.slice(0, 117)}...` : what, problem });
  }
}

const STACK = /\bat [^\n]*\.(?:ts|js|mjs):\d+|node:internal|Error: .*\n\s+at /;

/** Why an answer is not a clear 4xx in the JSON error shape (or, for pages, a 4xx page), if it isn't. */
export function refusalProblem(answer: RawAnswer, htmlAllowed = false): string | undefined {
  if (answer.status === 0) return `no answer (${answer.ending} after ${answer.ms} ms)`;
  if (answer.status < 400 || answer.status > 499) return `status ${answer.status}: ${answer.body.slice(0, 160)}`;
  if (STACK.test(answer.body)) return `a stack trace in the answer: ${answer.body.slice(0, 200)}`;
  const type = answer.headers['content-type'] ?? '';
  if (htmlAllowed && /text\/html/.test(type)) return undefined;
  if (!/json/.test(type)) return `status ${answer.status} without a JSON body (content-type "${type}"): ${answer.body.slice(0, 120)}`;
  try {
    const body = JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code !== 'string' || typeof body.error?.message !== 'string') return `not the error shape: ${answer.body.slice(0, 160)}`;
  } catch {
    return `a body that is not JSON: ${answer.body.slice(0, 160)}`;
  }
  return undefined;
}
