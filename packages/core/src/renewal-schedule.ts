/**
 * @module The renewal schedule: each managed name's next check time, so a maintenance pass touches only the
 * names whose time has come — its cost follows the work due, not the number of names (Caddy walks every
 * cached certificate on every pass).
 */

/** A min-heap of (time, name) with lazy deletion: rescheduling pushes anew, stale entries are skipped. */
export class RenewalSchedule {
  private readonly atMsByName = new Map<string, number>();
  private readonly heap: Array<{ atMs: number; name: string }> = [];

  /** Check `name` at `atMs` (replacing any earlier plan for it). */
  set(name: string, atMs: number): void {
    if (this.atMsByName.get(name) === atMs) return;
    this.atMsByName.set(name, atMs);
    this.push({ atMs, name });
    // Stale entries are dropped as they surface; rebuild when they outnumber live ones, to bound memory.
    if (this.heap.length > 2 * this.atMsByName.size + 1_024) this.rebuild();
  }

  /** Check `name` at the next pass, unless it is planned sooner already. */
  soon(name: string): void {
    const atMs = this.atMsByName.get(name);
    if (atMs === undefined || atMs > Number.NEGATIVE_INFINITY) this.set(name, Number.NEGATIVE_INFINITY);
  }

  has(name: string): boolean {
    return this.atMsByName.has(name);
  }

  delete(name: string): void {
    this.atMsByName.delete(name);
  }

  /** Removes and returns the names planned at or before `untilMs`, earliest first; the caller plans them anew. */
  takeDue(untilMs: number): string[] {
    const due: string[] = [];
    for (let top = this.heap[0]; top && top.atMs <= untilMs; top = this.heap[0]) {
      this.pop();
      if (this.atMsByName.get(top.name) !== top.atMs) continue; // rescheduled or deleted since
      this.atMsByName.delete(top.name);
      due.push(top.name);
    }
    return due;
  }

  /** The time of the next planned check, if any. */
  nextAtMs(): number | undefined {
    while (this.heap[0] && this.atMsByName.get(this.heap[0].name) !== this.heap[0].atMs) this.pop();
    return this.heap[0]?.atMs;
  }

  get size(): number {
    return this.atMsByName.size;
  }

  private rebuild(): void {
    this.heap.length = 0;
    for (const [name, atMs] of this.atMsByName) this.push({ atMs, name });
  }

  private push(entry: { atMs: number; name: string }): void {
    const heap = this.heap;
    heap.push(entry);
    for (let index = heap.length - 1; index > 0; ) {
      const parent = (index - 1) >> 1;
      if ((heap[parent] as { atMs: number }).atMs <= entry.atMs) break;
      heap[index] = heap[parent] as { atMs: number; name: string };
      heap[parent] = entry;
      index = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (!last || heap.length === 0) return;
    heap[0] = last;
    for (let index = 0; ; ) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && (heap[left] as typeof last).atMs < (heap[smallest] as typeof last).atMs)
        smallest = left;
      if (right < heap.length && (heap[right] as typeof last).atMs < (heap[smallest] as typeof last).atMs)
        smallest = right;
      if (smallest === index) return;
      [heap[index], heap[smallest]] = [heap[smallest] as typeof last, heap[index] as typeof last];
      index = smallest;
    }
  }
}
