import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('RateLimiter', () => {
  it('allows a burst of perMinute, then refills at perMinute / 60 s', () => {
    const c = clock();
    const limiter = new RateLimiter({ perMinute: 6, now: c.now });
    for (let i = 0; i < 6; i++) expect(limiter.take('a')).toEqual({ ok: true });
    // One token every 10 s.
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 10 });
    c.advance(4_000);
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 6 });
    c.advance(6_000);
    expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a').ok).toBe(false);
    // Other clients are not affected.
    expect(limiter.take('b')).toEqual({ ok: true });
  });

  it('never holds more than a full bucket, and a clock stepping back mints nothing', () => {
    const c = clock();
    const limiter = new RateLimiter({ perMinute: 2, now: c.now });
    c.advance(3_600_000);
    expect([limiter.take('a').ok, limiter.take('a').ok, limiter.take('a').ok]).toEqual([
      true,
      true,
      false,
    ]);
    c.advance(-3_600_000);
    expect(limiter.take('a').ok).toBe(false);
  });

  it('forgets idle clients and never keeps more than maxBuckets', () => {
    const c = clock();
    const limiter = new RateLimiter({ perMinute: 10, maxBuckets: 100, now: c.now });
    for (let i = 0; i < 50; i++) limiter.take(`ip${i}`);
    expect(limiter.size).toBe(50);
    // A minute later every bucket is full again, so they all go on the next call.
    c.advance(60_000);
    limiter.take('fresh');
    expect(limiter.size).toBe(1);
    for (let i = 0; i < 10_000; i++) limiter.take(`flood${i}`);
    expect(limiter.size).toBe(100);
    // The most recent client keeps its (drained) state.
    for (let i = 0; i < 9; i++) limiter.take('flood9999');
    expect(limiter.take('flood9999').ok).toBe(false);
  });

  it('refuses a nonsensical rate', () => {
    expect(() => new RateLimiter({ perMinute: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ perMinute: 1.5 })).toThrow(RangeError);
  });
});
