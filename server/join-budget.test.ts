/**
 * The per-client join budget (join-budget.ts): one client identity places at most one update in a
 * round with the defaults, whatever tokens it holds, in plaintext and in secure rounds.
 */
import { describe, expect, it } from 'vitest';
import { PATHS } from '../protocol/routes.js';
import { DEFAULT_CONFIG } from './config.js';
import { clientIdentity, JoinBudget } from './join-budget.js';
import { joinRound, makeApp, makeDelta, postUpdate, updateBody } from './test-helpers.js';

const code = (res: { json(): unknown }) =>
  (res.json() as { error?: { code?: string } }).error?.code;

describe('client identity', () => {
  it('is the IPv4 address, or the /64 of an IPv6 address', () => {
    expect(clientIdentity('203.0.113.7')).toBe('203.0.113.7');
    expect(clientIdentity('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientIdentity('2001:db8:0:1:aaaa::1')).toBe('2001:db8:0:1::/64');
    expect(clientIdentity('2001:0db8:0000:0001:ffff:ffff:ffff:ffff')).toBe('2001:db8:0:1::/64');
    expect(clientIdentity('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientIdentity('::1')).toBe('0:0:0:0::/64');
  });
});

describe('the join budget', () => {
  it('gives each identity its places per round, and back on release; 0 is no budget', () => {
    const budget = new JoinBudget(1);
    const release = budget.take(1, 'a');
    expect(() => budget.take(1, 'a')).toThrow(
      expect.objectContaining({ code: 'HEARTH_E_JOIN_BUDGET' }),
    );
    budget.take(1, 'b');
    budget.take(2, 'a');
    release();
    release();
    budget.take(1, 'a');
    const two = new JoinBudget(2);
    two.take('r', 'a');
    two.take('r', 'a');
    expect(() => two.take('r', 'a')).toThrow();
    const off = new JoinBudget(0);
    for (let i = 0; i < 5; i++) off.take(1, 'a');
  });

  it("holds one request's place in the round its update lands in, and gives it back", () => {
    const budget = new JoinBudget(1);
    const place = budget.place('a');
    place.admit(1);
    place.admit(1); // a retry into the same round keeps the place it has
    expect(() => budget.take(1, 'a')).toThrow(
      expect.objectContaining({ code: 'HEARTH_E_JOIN_BUDGET' }),
    );
    place.admit(2); // landing in another round frees the first
    budget.take(1, 'a');
    expect(() => budget.take(2, 'a')).toThrow();
    place.release();
    budget.take(2, 'a');
  });

  it('is one update per round by default, over HTTP, whatever tokens the client holds', async () => {
    expect(DEFAULT_CONFIG.joinsPerRound).toBe(1);
    const t = await makeApp({ minCohort: 3 });
    try {
      const [a1, a2, stale] = [
        await joinRound(t.app),
        await joinRound(t.app),
        await joinRound(t.app),
      ];
      const post = (token: string, from: string, salt = 0) =>
        postUpdate(t.app, updateBody({ token, delta: makeDelta(0.3, salt) }), undefined, from);
      expect((await post(a1.token, '203.0.113.7')).statusCode).toBe(202);
      const before = await t.store.counts();
      const again = await post(a2.token, '203.0.113.7');
      expect([again.statusCode, code(again)]).toEqual([429, 'HEARTH_E_JOIN_BUDGET']);
      // Nothing of the refused update was kept, and its token is still good.
      expect(await t.store.counts()).toEqual(before);
      // One IPv6 subscriber's /64 is one client; another /64 is another.
      expect((await post(a2.token, '2001:db8:0:1::10', 1)).statusCode).toBe(202);
      const same64 = await post(stale.token, '2001:db8:0:1::20', 2);
      expect(code(same64)).toBe('HEARTH_E_JOIN_BUDGET');
      const third = await joinRound(t.app);
      expect((await post(third.token, '2001:db8:0:2::1', 3)).statusCode).toBe(202);
      // Round 1 published. The client's token of round 1 counts in round 2 (within the staleness
      // bound), and so would a token of round 2: only one of the two gets in.
      const fresh = await joinRound(t.app);
      expect(fresh.round).toBe(2);
      expect((await post(stale.token, '203.0.113.7', 4)).statusCode).toBe(202);
      const second = await post(fresh.token, '203.0.113.7', 5);
      expect(code(second)).toBe('HEARTH_E_JOIN_BUDGET');
    } finally {
      await t.close();
    }
  });

  it('takes nothing with --joins-per-round 0', async () => {
    const t = await makeApp({ minCohort: 3, joinsPerRound: 0 });
    try {
      for (let k = 0; k < 2; k++) {
        const { token } = await joinRound(t.app);
        const res = await postUpdate(t.app, updateBody({ token }), undefined, '203.0.113.7');
        expect(res.statusCode).toBe(202);
      }
    } finally {
      await t.close();
    }
  });

  it('gives one place in a forming secure round per client', async () => {
    const t = await makeApp({ aggregation: 'secure', minCohort: 3, secureJoinSeconds: 600 });
    try {
      const join = (from: string) =>
        t.app.inject({ method: 'POST', url: PATHS.secureJoin, remoteAddress: from });
      expect((await join('203.0.113.7')).statusCode).toBe(200);
      const again = await join('203.0.113.7');
      expect([again.statusCode, code(again)]).toEqual([429, 'HEARTH_E_JOIN_BUDGET']);
      expect((await join('198.51.100.1')).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
