/**
 * Due times, earliest first (a binary heap), so a health-check tick costs the checks that are due,
 * not a walk over every instance. Entries are not removed when an instance is rescheduled or
 * forgotten: the caller skips an entry whose time no longer matches its own record.
 */
export class DueQueue {
  private readonly at: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.at.length;
  }

  /** The earliest due time (Infinity when empty). */
  peek(): number {
    return this.at.length ? this.at[0] : Infinity;
  }

  push(at: number, id: string): void {
    let i = this.at.length;
    this.at.push(at);
    this.ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.at[parent] <= at) break;
      this.at[i] = this.at[parent];
      this.ids[i] = this.ids[parent];
      i = parent;
    }
    this.at[i] = at;
    this.ids[i] = id;
  }

  pop(): { at: number; id: string } {
    const top = { at: this.at[0], id: this.ids[0] };
    const lastAt = this.at.pop()!;
    const lastId = this.ids.pop()!;
    const n = this.at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && this.at[child + 1] < this.at[child]) child++;
        if (this.at[child] >= lastAt) break;
        this.at[i] = this.at[child];
        this.ids[i] = this.ids[child];
        i = child;
      }
      this.at[i] = lastAt;
      this.ids[i] = lastId;
    }
    return top;
  }
}
