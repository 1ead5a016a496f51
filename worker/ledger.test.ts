import { describe, expect, it } from 'vitest';
import type { JoinedRound, StoredInteraction } from '../protocol/api.js';
import { manifestFor } from '../protocol/manifest.js';
import { computeEpsilon, computeSkellamEpsilon } from '../protocol/privacy/index.js';
import { fixedPointScale, ROUNDING_BETA } from '../protocol/secagg/fixed-point.js';
import { roundPrivacy, type SecureRoundInfo } from '../protocol/secagg/http.js';
import { buildLedger, DEFAULT_LEDGER_DELTA, ledgerItems } from './ledger.js';

const row = (id: number, item: string, type: StoredInteraction['type'], ts: number) => ({
  id,
  item,
  type,
  ts,
  session: 1,
});

const federation = manifestFor(
  { items: 10, embedding: 4, hidden: 4, maxSessionLength: 5 },
  { itemIds: [], federation: { clipNorm: 1, minCohort: 3, maxExamples: 100 } },
).federation;

const plaintext = (at: number, z: number): JoinedRound => ({
  round: String(at),
  version: at,
  at,
  mode: 'plaintext',
  privacy: { noiseMultiplier: z, sampleRate: 1 },
});

const ledgerOf = (rounds: JoinedRound[], terms = federation) =>
  buildLedger({
    rows: [],
    requests: [],
    requestsKept: 500,
    rounds,
    federation: terms,
    titleOf: () => undefined,
  });

describe('the privacy ledger', () => {
  it('groups what is stored by item, the most recently touched first, with titles', () => {
    const rows = [
      row(1, 'a', 'view', 10),
      row(2, 'b', 'view', 11),
      row(3, 'a', 'click', 12),
      row(4, 'a', 'view', 13),
      row(5, 'c', 'purchase', 5),
    ];
    const titles: Record<string, string> = { a: 'Alpha' };
    expect(ledgerItems(rows, (id) => titles[id])).toEqual([
      { item: 'a', title: 'Alpha', types: { view: 2, click: 1 }, count: 3, first: 10, last: 13 },
      { item: 'b', types: { view: 1 }, count: 1, first: 11, last: 11 },
      { item: 'c', types: { purchase: 1 }, count: 1, first: 5, last: 5 },
    ]);
  });

  it("prices the device's rounds as the Gaussian mechanism with no credit for sampling", () => {
    const terms = { ...federation, noiseMultiplier: 1.1, delta: 1e-5 };
    const rounds = [1, 2, 3, 4].map((at) => plaintext(at, 1.1));
    const ledger = ledgerOf(rounds, terms);
    expect(ledger.privacy.delta).toBe(1e-5);
    expect(ledger.privacy.curve).toHaveLength(4);
    ledger.privacy.curve.forEach((epsilon, i) => {
      const expected = computeEpsilon({ noise: 1.1, sampleRate: 1, steps: i + 1, delta: 1e-5 });
      expect(epsilon).toBeCloseTo(expected.epsilon, 9);
    });
    expect(ledger.privacy.epsilon).toBe(ledger.privacy.curve[3]);
    // It grows with every round taken part in.
    expect([...ledger.privacy.curve].sort((a, b) => a - b)).toEqual(ledger.privacy.curve);
    expect(ledger.aggregation).toBe('plaintext');
  });

  it('is 0 before any round, and infinite from a round without noise on', () => {
    expect(ledgerOf([]).privacy).toEqual({ delta: DEFAULT_LEDGER_DELTA, epsilon: 0, curve: [] });
    const curve = ledgerOf([plaintext(1, 2), plaintext(2, 0), plaintext(3, 2)]).privacy.curve;
    expect(curve[0]).toBeGreaterThan(0);
    expect(curve[0]).toBeLessThan(Infinity);
    expect(curve.slice(1)).toEqual([Infinity, Infinity]);
    const none = buildLedger({
      rows: [],
      requests: [],
      requestsKept: 500,
      rounds: [],
      federation: undefined,
      titleOf: () => undefined,
    });
    expect(none.aggregation).toBeNull();
  });

  it("prices secure rounds with the Skellam accountant on the round's own noise", () => {
    const [clip, z, t, summands, length] = [1, 1.3, 50, 4000, 20_000];
    const scale = fixedPointScale(clip, summands, 32);
    const mu = (z * clip * scale) ** 2;
    const info = {
      threshold: t,
      length,
      clipNorm: clip,
      summands,
      bits: 32,
      noiseVariance: mu / t,
    };
    const privacy = roundPrivacy(info as SecureRoundInfo);
    const secure: JoinedRound = { ...plaintext(1, 0), mode: 'secure', privacy };
    const ledger = ledgerOf([secure, { ...secure, at: 2 }], {
      ...federation,
      aggregation: 'secure',
    });
    expect(ledger.aggregation).toBe('secure');
    // The device rounds conditionally (protocol/secagg/fixed-point.ts), at ROUNDING_BETA.
    const direct = computeSkellamEpsilon({
      clip,
      scale,
      dimension: length,
      beta: ROUNDING_BETA,
      mu,
      sampleRate: 1,
      steps: 2,
      delta: DEFAULT_LEDGER_DELTA,
    });
    expect(ledger.privacy.epsilon).toBeCloseTo(direct.epsilon, 6);
    expect(ledger.privacy.curve[1]).toBeGreaterThan(ledger.privacy.curve[0]!);
    // A little above the Gaussian at the same z, as on the server.
    const gaussian = computeEpsilon({
      noise: z,
      sampleRate: 1,
      steps: 2,
      delta: DEFAULT_LEDGER_DELTA,
    });
    expect(ledger.privacy.epsilon).toBeGreaterThanOrEqual(gaussian.epsilon);
    expect(ledger.privacy.epsilon).toBeLessThan(1.2 * gaussian.epsilon);
  });
});
