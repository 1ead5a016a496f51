/**
 * A token bucket per client: each holds up to `perMinute` tokens (a minute's burst) and refills at
 * perMinute / 60 s; a request takes one. Memory is bounded: buckets are kept in least-recently-used
 * order, a bucket idle for a full refill period is dropped (it would be full again, so forgetting it
 * changes nothing), and past `maxBuckets` the least recently used ones go even if not yet full.
 */

/** What one take() decided. */
export type RateDecision =
  { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

/** Settings of a RateLimiter. */
export interface RateLimiterOptions {
  /** Requests a client may make per minute, sustained; also the burst size. */
  readonly perMinute: number;
  /**
   * Most buckets kept at once. An attacker rotating source addresses can only push out other
   * clients' partial buckets (handing them a fresh full one), never grow memory past this.
   */
  readonly maxBuckets?: number;
  /** Clock in milliseconds (tests inject one). */
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  updated: number;
}

const MINUTE_MS = 60_000;

/** Default cap on tracked clients: a few MB at most. */
export const DEFAULT_MAX_BUCKETS = 50_000;

/** Per-client token buckets; see the module comment. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly capacity: number;
  private readonly perMs: number;
  private readonly maxBuckets: number;
  private readonly now: () => number;

  /** `perMinute` must be a positive integer. */
  constructor(options: RateLimiterOptions) {
    if (!(Number.isInteger(options.perMinute) && options.perMinute > 0)) {
      throw new RangeError(`perMinute must be a positive integer, got ${options.perMinute}`);
    }
    this.capacity = options.perMinute;
    this.perMs = options.perMinute / MINUTE_MS;
    this.maxBuckets = options.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    this.now = options.now ?? Date.now;
  }

  /** Buckets currently held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token from `client`'s bucket, or says how long until one is available. */
  take(client: string): RateDecision {
    const now = this.now();
    const existing = this.buckets.get(client);
    let bucket: Bucket;
    if (existing) {
      // A clock that steps back must not mint tokens or make `elapsed` negative.
      const elapsed = Math.max(0, now - existing.updated);
      bucket = {
        tokens: Math.min(this.capacity, existing.tokens + elapsed * this.perMs),
        updated: Math.max(now, existing.updated),
      };
      // Re-inserting moves the client to the most-recently-used end of the Map's order.
      this.buckets.delete(client);
    } else {
      bucket = { tokens: this.capacity, updated: now };
    }
    let decision: RateDecision;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      decision = { ok: true };
    } else {
      const waitMs = (1 - bucket.tokens) / this.perMs;
      decision = { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    }
    this.buckets.set(client, bucket);
    this.evict(now);
    return decision;
  }

  /** Drops idle buckets from the least recently used end, then any excess over maxBuckets. */
  private evict(now: number): void {
    for (const [client, bucket] of this.buckets) {
      const full = bucket.tokens + (now - bucket.updated) * this.perMs >= this.capacity;
      // Map order is last-use order, so the first bucket still refilling ends the idle sweep.
      if (!full && this.buckets.size <= this.maxBuckets) break;
      this.buckets.delete(client);
    }
  }
}
