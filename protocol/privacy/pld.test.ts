import { describe, expect, it } from 'vitest';
import { refusal } from '../testing.js';
import { normalCdf } from './log-math.js';
import { pldDelta, pldEpsilon } from './pld.js';
import { computeEpsilon } from './rdp.js';

/**
 * The Gaussian mechanism's exact delta at epsilon (Balle and Wang 2018, Theorem 8), sensitivity 1,
 * noise std sigma; k rounds of it compose to one of noise sigma / sqrt(k).
 */
function gaussianDelta(sigma: number, epsilon: number): number {
  return (
    normalCdf(1 / (2 * sigma) - epsilon * sigma) -
    Math.exp(epsilon) * normalCdf(-1 / (2 * sigma) - epsilon * sigma)
  );
}

describe('PLD accountant: reference values', () => {
  it("reproduces dp_accounting's Poisson-subsampled Gaussian: q 0.2, z 0.5, 3 rounds", () => {
    // pld_privacy_accountant_test.py test_poisson_subsampled_gaussian: delta 0.15594 at epsilon 1.
    const rounds = [{ noise: 0.5, sampleRate: 0.2, steps: 3 }];
    expect(pldDelta(rounds, 1)).toBeCloseTo(0.15594, 4);
    expect(pldEpsilon(rounds, 0.15594)).toBeCloseTo(1, 3);
  });

  it("reproduces dp_accounting's Gaussian: z sqrt(3), 3 rounds", () => {
    // test_gaussian_basic: delta 0.126936 at epsilon 1, within 1e-3.
    const rounds = [{ noise: Math.sqrt(3), sampleRate: 1, steps: 3 }];
    expect(Math.abs(pldDelta(rounds, 1) - 0.126936)).toBeLessThan(1e-4);
  });

  it("brackets the Gaussian's closed form: never below it, within the grid above it", () => {
    for (const [z, steps, epsilon] of [
      [1, 1, 0.5],
      [2, 4, 1],
      [4, 20, 0.3],
      [0.8, 10, 4],
    ] as const) {
      const exact = gaussianDelta(z / Math.sqrt(steps), epsilon);
      const delta = pldDelta([{ noise: z, sampleRate: 1, steps }], epsilon);
      expect(delta).toBeGreaterThanOrEqual(exact);
      // Every loss is rounded up by less than one grid step (1e-4) a round.
      expect(delta).toBeLessThanOrEqual(
        gaussianDelta(z / Math.sqrt(steps), epsilon - steps * 1e-4),
      );
    }
  });
});

describe('PLD accountant: behaviour', () => {
  it('is tighter than the RDP bound on a Hearth run, and never below the finer grid', () => {
    // 20 rounds at q = 0.1: RDP spends epsilon 2 at z = 1.6244 (README "Larger cohorts").
    const rounds = [{ noise: 1.6244, sampleRate: 0.1, steps: 20 }];
    const rdp = computeEpsilon({ ...rounds[0]!, delta: 1e-6 }).epsilon;
    const pld = pldEpsilon(rounds, 1e-6);
    expect(rdp).toBeCloseTo(2, 3);
    expect(pld).toBeLessThan(rdp - 0.15);
    // A coarser grid rounds more up: it can only report more.
    const coarse = pldEpsilon(rounds, 1e-6, 1e-3);
    expect(coarse).toBeGreaterThan(pld);
    expect(coarse).toBeLessThan(pld + 20 * 1e-3);
  });

  it('composes: more rounds or a larger q cost more; rounds split add up the same', () => {
    const base = pldEpsilon([{ noise: 1.5, sampleRate: 0.1, steps: 10 }], 1e-6);
    expect(pldEpsilon([{ noise: 1.5, sampleRate: 0.1, steps: 20 }], 1e-6)).toBeGreaterThan(base);
    expect(pldEpsilon([{ noise: 1.5, sampleRate: 0.2, steps: 10 }], 1e-6)).toBeGreaterThan(base);
    expect(pldEpsilon([{ noise: 2, sampleRate: 0.1, steps: 10 }], 1e-6)).toBeLessThan(base);
    const split = pldEpsilon(
      [
        { noise: 1.5, sampleRate: 0.1, steps: 3 },
        { noise: 1.5, sampleRate: 0.1, steps: 7 },
      ],
      1e-6,
    );
    expect(split).toBeCloseTo(base, 6);
  });

  it('prices no rounds, and rounds no device joins, at 0', () => {
    expect(pldEpsilon([], 1e-6)).toBe(0);
    expect(pldEpsilon([{ noise: 1, sampleRate: 0, steps: 100 }], 1e-6)).toBe(0);
    expect(pldDelta([{ noise: 1, sampleRate: 0.1, steps: 0 }], 0)).toBe(0);
  });

  it('refuses bad parameters with HEARTH_E_PRIVACY_PARAMS', () => {
    const bad = [
      () => pldEpsilon([{ noise: 0, sampleRate: 0.1, steps: 1 }], 1e-6),
      () => pldEpsilon([{ noise: 1, sampleRate: 1.5, steps: 1 }], 1e-6),
      () => pldEpsilon([{ noise: 1, sampleRate: 0.1, steps: 1.5 }], 1e-6),
      () => pldEpsilon([{ noise: 1, sampleRate: 0.1, steps: 1 }], 0),
      () => pldEpsilon([{ noise: 1, sampleRate: 0.1, steps: 1 }], 1e-6, 0),
      () => pldDelta([{ noise: 1, sampleRate: 0.1, steps: 1 }], -1),
    ];
    for (const call of bad) expect(refusal(call).code).toBe('HEARTH_E_PRIVACY_PARAMS');
  });
});
