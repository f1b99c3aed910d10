/** A small seeded generator (mulberry32), so a fuzz run can be repeated exactly from its seed. */
export class Random {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

const JSON_JUNK = ['{', '}', '[', ']', ',', ':', '"', '\\', 'null', 'true', '1e999', '-', 'NaN', '\u0000', '\uffff', '\ud800', '/*', '\n'];

/** A syntactically broken version of a valid JSON text. */
export function breakJson(random: Random, text: string): string {
  switch (random.int(0, 6)) {
    case 0:
      return text.slice(0, random.int(0, Math.max(0, text.length - 1)));
    case 1: {
      const at = random.int(0, text.length);
      return text.slice(0, at) + random.pick(JSON_JUNK) + text.slice(at);
    }
    case 2: {
      const at = random.int(0, Math.max(0, text.length - 1));
      return text.slice(0, at) + text.slice(at + 1 + random.int(0, 5));
    }
    case 3:
      return '['.repeat(random.int(1000, 20000));
    case 4:
      return `\ufeff${text}`.replace(/"/g, () => (random.chance(0.3) ? "'" : '"'));
    case 5:
      return random.bytes(random.int(1, 200)).toString('latin1');
    default:
      return `${text}${text}`;
  }
}

/** A value of a different JSON type than `value` (never null, which optional fields may take). */
export function wrongType(random: Random, value: unknown): unknown {
  const kinds = ['number', 'string', 'boolean', 'array', 'object', 'huge-string', 'nested'].filter((kind) => {
    if (kind === 'number') return typeof value !== 'number';
    if (kind === 'string' || kind === 'huge-string') return typeof value !== 'string';
    if (kind === 'boolean') return typeof value !== 'boolean';
    if (kind === 'array' || kind === 'nested') return !Array.isArray(value);
    return typeof value !== 'object' || Array.isArray(value) || value === null;
  });
  switch (random.pick(kinds)) {
    case 'number':
      return random.pick([0, -1, 1e308, -0.5, 2 ** 53 + 1]);
    case 'string':
      return random.pick(['', ' ', 'x', '../../etc/passwd', '\u0000', '<script>']);
    case 'huge-string':
      return 'x'.repeat(random.int(10_000, 60_000));
    case 'boolean':
      return random.chance(0.5);
    case 'array':
      return random.pick([[], [1, 2], [{}], [[]]]);
    case 'nested':
      return JSON.parse('['.repeat(500) + ']'.repeat(500));
    default:
      return random.pick([{}, { a: 1 }, { $gt: '' }, { __proto__: { polluted: true } }]);
  }
}
