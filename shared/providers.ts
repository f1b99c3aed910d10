export type ProviderListener = (urls: readonly string[]) => void;

/**
 * The live table of providers for the services this one requires, kept from the registry's
 * answers and patches. Picks are round-robin; a provider that just refused a connection is
 * passed over for a moment (while another is available).
 */
export class ProviderTable {
  private readonly urlsByName = new Map<string, string[]>();
  private readonly cursor = new Map<string, number>();
  private readonly suspectUntil = new Map<string, number>();
  private readonly listeners = new Map<string, Set<ProviderListener>>();

  get(name: string): readonly string[] {
    return this.urlsByName.get(name) ?? [];
  }

  names(): string[] {
    return [...this.urlsByName.keys()];
  }

  snapshot(): Record<string, string[]> {
    return Object.fromEntries([...this.urlsByName].map(([name, urls]) => [name, [...urls]]));
  }

  add(name: string, url: string): void {
    const urls = this.urlsByName.get(name) ?? [];
    if (urls.includes(url)) return;
    this.set(name, [...urls, url]);
  }

  remove(name: string, url: string): void {
    const urls = this.urlsByName.get(name);
    if (!urls?.includes(url)) return;
    this.set(name, urls.filter((u) => u !== url));
  }

  /** Replaces the whole list for a name (a re-sync); listeners hear only of real changes. */
  replace(name: string, urls: string[]): void {
    const current = this.urlsByName.get(name) ?? [];
    const next = [...new Set(urls)];
    if (current.length === next.length && current.every((u) => next.includes(u))) return;
    this.set(name, next);
  }

  /** Whether any provider of the name is listed (outside `exclude`): a question, so the round-robin cursor stays put. */
  has(name: string, exclude: ReadonlySet<string> = new Set()): boolean {
    return this.get(name).some((u) => !exclude.has(u));
  }

  /** The next provider, round-robin, preferring ones not marked suspect; it moves the cursor, so ask `has` for a yes/no. */
  pick(name: string, exclude: ReadonlySet<string> = new Set()): string | undefined {
    const urls = this.get(name).filter((u) => !exclude.has(u));
    if (urls.length === 0) return undefined;
    const now = Date.now();
    const healthy = urls.filter((u) => (this.suspectUntil.get(u) ?? 0) <= now);
    const pool = healthy.length > 0 ? healthy : urls;
    const index = (this.cursor.get(name) ?? 0) % pool.length;
    this.cursor.set(name, index + 1);
    return pool[index];
  }

  /** Passes a provider over for a while after it failed to connect; the registry will confirm. */
  markSuspect(url: string, forMs = 2000): void {
    this.suspectUntil.set(url, Date.now() + forMs);
  }

  onChange(name: string, listener: ProviderListener): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private set(name: string, urls: string[]): void {
    this.urlsByName.set(name, urls);
    for (const url of urls) this.suspectUntil.delete(url);
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        listener(urls);
      } catch {
        // A listener's failure is its own; the table stays consistent.
      }
    }
  }
}
