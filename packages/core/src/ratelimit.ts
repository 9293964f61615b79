/** @module Internal rate limiter: at most N new orders per sliding window per (CA directory, account). */
import type { Clock } from './clock.js';
import { sleep } from './clock.js';
import { publishRateLimiterWait } from './diagnostics.js';

/** Let's Encrypt allows 300 new orders per 3 h; 10 per 10 s (Caddy's figure) keeps bursts far below that. */
export const DEFAULT_ORDERS_PER_WINDOW = 10;
export const DEFAULT_RATE_WINDOW_MS = 10_000;

export interface RateLimitOptions {
  orders?: number;
  windowMs?: number;
}

/** A sliding-window limiter: `take()` resolves when an event fits in the window, and records it. */
export class SlidingWindowLimiter {
  private readonly events: number[] = [];
  private queue: Promise<void> = Promise.resolve();
  /** Callers in `take()` not yet admitted. */
  private queued = 0;

  constructor(
    readonly maxEvents: number,
    readonly windowMs: number,
    private readonly clock: Clock,
    /** Names the limiter in the `rate_limiter_wait_seconds` figures (`<directory>|<account>`). */
    readonly key = '',
  ) {}

  /** How long a `take()` now would wait, in ms (0 when it would not). */
  waitMs(): number {
    this.forgetOld();
    if (this.events.length < this.maxEvents) return 0;
    return (this.events[this.events.length - this.maxEvents] ?? 0) + this.windowMs - this.clock.now();
  }

  /**
   * Resolves when an event fits in the window, and records it. `onWait` runs at once when this caller will
   * have to wait (for the window, or behind callers queued before it); `onDone` when it got its slot.
   */
  take(signal?: AbortSignal, hooks: { onWait?(): void; onDone?(): void } = {}): Promise<number> {
    const askedMs = this.clock.now();
    const willWait = this.waitMs() > 0 || this.events.length + this.queued >= this.maxEvents;
    if (willWait) hooks.onWait?.();
    this.queued++;
    // Callers queue, so a burst is admitted in arrival order, one slot at a time.
    const turn = this.queue
      .then(async () => {
        for (let wait = this.waitMs(); wait > 0; wait = this.waitMs()) await sleep(wait, signal);
        const takenAtMs = this.clock.now();
        this.events.push(takenAtMs);
        publishRateLimiterWait({ key: this.key, waitMs: takenAtMs - askedMs });
        if (willWait) hooks.onDone?.();
        return takenAtMs;
      })
      .finally(() => this.queued--);
    this.queue = turn.then(
      () => {},
      () => {},
    );
    return turn;
  }

  /** Gives back the slot `take()` recorded at `takenAtMs` (its order was not placed after all). */
  giveBack(takenAtMs: number): void {
    const index = this.events.lastIndexOf(takenAtMs);
    if (index !== -1) this.events.splice(index, 1);
  }

  private forgetOld(): void {
    const cutoff = this.clock.now() - this.windowMs;
    while (this.events.length > 0 && (this.events[0] ?? 0) <= cutoff) this.events.shift();
  }
}

/** One limiter per key (e.g. `ca|account`), created on first use. */
export class RateLimiters {
  private readonly limiters = new Map<string, SlidingWindowLimiter>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: Clock,
  ) {}

  for(key: string): SlidingWindowLimiter {
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = new SlidingWindowLimiter(
        this.options.orders ?? DEFAULT_ORDERS_PER_WINDOW,
        this.options.windowMs ?? DEFAULT_RATE_WINDOW_MS,
        this.clock,
        key,
      );
      this.limiters.set(key, limiter);
    }
    return limiter;
  }
}
