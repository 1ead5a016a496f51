import { describe, expect, it } from 'vitest';
import { computeEpsilon, pldEpsilon } from '../protocol/privacy/index.js';
import { parsePrivacyArgs, runPrivacyCli } from './privacy.js';

function run(argv: string[]): { code: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const code = runPrivacyCli(
    argv,
    (line) => out.push(line),
    (line) => err.push(line),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('npm run privacy', () => {
  it('--traffic: a table of epsilon a day, a month and a year under the server flags', () => {
    const { code, out } = run(['--traffic', '10000,100000', '--noise-multiplier', '1.2']);
    expect(code).toBe(0);
    expect(out).toContain('z 1.2, q 0.01, m 100, s 2 (charged at q_eff 0.03), delta 1e-6');
    expect(out).toContain(
      '| 10,000 | 100 | 1 | 1.12 (1 rounds) | 1.53 (30 rounds) | 3.3 (365 rounds) |',
    );
    const small = run(['--traffic', '1000', '--sample-rate', '0.1']);
    expect(small.out).toMatch(/\| 1,000 \| 100 \| 1 \| 2\.9 \(1 rounds\)/);
    for (const argv of [
      ['--traffic'],
      ['--traffic', '0'],
      ['--traffic', '100', '--min-cohort', '0'],
    ]) {
      const bad = run(argv);
      expect(bad.code, argv.join(' ')).toBe(2);
      expect(bad.err).toContain('Usage: npm run privacy');
    }
  });

  it('prints epsilon and the best order', () => {
    const argv = ['--noise', '1.3', '--sample-rate=0.0025', '--steps', '6000', '--delta', '1e-5'];
    const { code, out } = run(argv);
    expect(code).toBe(0);
    const expected = computeEpsilon({ noise: 1.3, sampleRate: 0.0025, steps: 6000, delta: 1e-5 });
    expect(out).toContain(`epsilon = ${expected.epsilon}`);
    expect(out).toContain('best RDP order = 19');
    expect(expected.epsilon).toBeCloseTo(0.7242234026109595, 9);
  });

  it('with --pld, prints the PLD epsilon too, below the RDP one', () => {
    const argv = ['--noise', '1.6244', '--sample-rate', '0.1', '--steps', '20', '--delta', '1e-6'];
    const { code, out } = run([...argv, '--pld']);
    expect(code).toBe(0);
    const pld = pldEpsilon([{ noise: 1.6244, sampleRate: 0.1, steps: 20 }], 1e-6);
    expect(out).toContain(`PLD epsilon = ${pld}`);
    expect(pld).toBeLessThan(
      computeEpsilon({ noise: 1.6244, sampleRate: 0.1, steps: 20, delta: 1e-6 }).epsilon,
    );
    expect(run(argv).out).not.toContain('PLD');
  });

  it.each([
    [['--noise', '1', '--sample-rate', '0.1', '--steps', '10'], /--delta is required/],
    [['--noise', '0', '--sample-rate', '0.1', '--steps', '1', '--delta', '1e-5'], /--noise must/],
    [['--noise', '1', '--sample-rate', '2', '--steps', '1', '--delta', '1e-5'], /--sample-rate/],
    [['--noise', '1', '--sample-rate', '0.1', '--steps', '1.5', '--delta', '1e-5'], /--steps/],
    [['--noise', '1', '--sample-rate', '0.1', '--steps', '1', '--delta', '1'], /--delta must/],
    [['--noise', 'abc'], /--noise must be a number/],
    [['--noise', '--steps', '3'], /--noise needs a value/],
    [['--epsilon', '3'], /--epsilon is not a known option/],
  ])('rejects %j with exit code 2', (argv, message) => {
    const { code, err } = run(argv);
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err).toContain('Usage: npm run privacy');
  });

  it('parses both flag spellings', () => {
    expect(
      parsePrivacyArgs(['--noise=2', '--sample-rate', '1', '--steps=0', '--delta=0.5']),
    ).toEqual({ noise: 2, sampleRate: 1, steps: 0, delta: 0.5 });
  });
});
