/**
 * Topic names and the patterns subscribers give, in NATS's shape: dot-separated words, `*` for
 * exactly one word, a final `>` for one or more. `task.*` matches `task.done`, not `task.done.late`.
 */

const WORD = /^[A-Za-z0-9_-]+$/;
export const MAX_TOPIC_LENGTH = 200;
const MAX_WORDS = 16;

/** Why a topic is not valid, or undefined when it is. */
export function topicProblem(topic: unknown): string | undefined {
  return nameProblem(topic, false);
}

/** Why a subscription pattern is not valid, or undefined when it is. */
export function patternProblem(pattern: unknown): string | undefined {
  return nameProblem(pattern, true);
}

function nameProblem(name: unknown, wildcards: boolean): string | undefined {
  if (typeof name !== 'string') return 'must be a string';
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_TOPIC_LENGTH) return `must be at most ${MAX_TOPIC_LENGTH} characters`;
  const words = name.split('.');
  if (words.length > MAX_WORDS) return `must have at most ${MAX_WORDS} dot-separated words`;
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (wildcards && (word === '*' || (word === '>' && i === words.length - 1))) continue;
    if (!WORD.test(word)) {
      return wildcards
        ? 'must be dot-separated words of letters, digits, "_" or "-", "*" for one word, or a final ">" for the rest'
        : 'must be dot-separated words of letters, digits, "_" or "-" (no wildcards, spaces or empty words)';
    }
  }
  return undefined;
}

/** Whether a valid topic matches a valid pattern. */
export function topicMatches(pattern: string, topic: string): boolean {
  if (pattern === topic || pattern === '>') return true;
  const want = pattern.split('.');
  const have = topic.split('.');
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '>') return have.length > i;
    if (i >= have.length || (want[i] !== '*' && want[i] !== have[i])) return false;
  }
  return want.length === have.length;
}

/**
 * The topics one subscriber wants. Exact names are a set lookup; only wildcard patterns are
 * matched word by word, and each topic's answer is remembered (subscribers see the same few topics).
 */
export class TopicFilter {
  readonly patterns: readonly string[];
  private readonly exact: Set<string>;
  private readonly wild: string[];
  private readonly seen = new Map<string, boolean>();

  constructor(patterns: readonly string[]) {
    this.patterns = [...new Set(patterns)];
    this.exact = new Set(this.patterns.filter((p) => !p.includes('*') && !p.includes('>')));
    this.wild = this.patterns.filter((p) => !this.exact.has(p));
  }

  matches(topic: string): boolean {
    if (this.exact.has(topic)) return true;
    if (this.wild.length === 0) return false;
    let answer = this.seen.get(topic);
    if (answer === undefined) {
      answer = this.wild.some((pattern) => topicMatches(pattern, topic));
      if (this.seen.size > 10_000) this.seen.clear();
      this.seen.set(topic, answer);
    }
    return answer;
  }

  sameAs(patterns: readonly string[]): boolean {
    const other = new Set(patterns);
    return other.size === this.patterns.length && this.patterns.every((p) => other.has(p));
  }
}
