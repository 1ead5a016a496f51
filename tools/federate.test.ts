import { describe, expect, it } from 'vitest';
import { computeEpsilon, pldEpsilon } from '../protocol/privacy/index.js';
import { settingsFrom } from './federate.js';
import { runLabel, serverConfig } from './federate/run.js';

const base = {
  scenario: 'seed',
  rounds: '200',
  'sample-rate': '0.01',
  noise: '0',
  clip: '5',
  delta: '1e-6',
  seed: '1',
  rows: '512',
  'row-choice': 'window',
  'local-steps': '1',
  'local-optimizer': 'sgd',
  'local-lr': '10',
  mu: '0',
  negatives: '512',
  'negative-alpha': '0',
  'server-optimizer': 'fedadam',
  'server-lr': '0.01',
  'eval-every': '25',
  'eval-cases': '5000',
};

describe('npm run federate flags', () => {
  it('turns --epsilon into the noise that spends at most that over the run', () => {
    const s = settingsFrom({ ...base, epsilon: '2' });
    const spent = computeEpsilon({ noise: s.noise, sampleRate: 0.01, steps: 200, delta: 1e-6 });
    expect(spent.epsilon).toBeLessThanOrEqual(2);
    expect(spent.epsilon).toBeGreaterThan(1.9);
    expect(settingsFrom(base).noise).toBe(0);
    expect(settingsFrom({ ...base, rows: 'full' }).rowsPerRound).toBeNull();
  });

  it('with --accountant pld, spends --epsilon by the PLD: less noise than by RDP', () => {
    const short = { ...base, rounds: '5', 'sample-rate': '0.1', epsilon: '2' };
    const rdp = settingsFrom(short);
    const pld = settingsFrom({ ...short, accountant: 'pld' });
    expect(pld.accountant).toBe('pld');
    expect(rdp.accountant).toBeUndefined();
    const spent = pldEpsilon([{ noise: pld.noise, sampleRate: 0.1, steps: 5 }], 1e-6);
    expect(spent).toBeLessThanOrEqual(2);
    expect(spent).toBeGreaterThan(1.9);
    expect(pld.noise).toBeLessThan(rdp.noise * 0.95);
    expect(() => settingsFrom({ ...base, accountant: 'moments' })).toThrow(/accountant/);
    expect(() => settingsFrom({ ...base, accountant: 'pld', secure: 'on' })).toThrow(
      /--accountant pld needs --secure off/,
    );
  });

  it('refuses bad values with the flag named', () => {
    expect(() => settingsFrom({ ...base, 'sample-rate': '0' })).toThrow(/--sample-rate/);
    expect(() => settingsFrom({ ...base, scenario: 'old' })).toThrow(/scenario/);
    expect(() => settingsFrom({ ...base, 'negative-alpha': '-1' })).toThrow(/--negative-alpha/);
    expect(() => settingsFrom({ ...base, 'row-choice': 'random' })).toThrow(/row-choice/);
    expect(() => settingsFrom({ ...base, 'local-optimizer': 'rmsprop' })).toThrow(
      /local-optimizer/,
    );
    expect(() => settingsFrom({ ...base, noise: '-1' })).toThrow(/--noise/);
    // A rounded body is formed only per device, and never in secure rounds.
    expect(() => settingsFrom({ ...base, 'update-dtype': 'int4' })).toThrow(/--per-device on/);
    expect(() =>
      settingsFrom({ ...base, 'update-dtype': 'int8', 'per-device': 'on', secure: 'on' }),
    ).toThrow(/--secure off/);
    expect(settingsFrom({ ...base, 'update-dtype': 'int4', 'per-device': 'on' }).updateDtype).toBe(
      'int4',
    );
    expect(() => settingsFrom({ ...base, 'update-dtype': 'int3', 'per-device': 'on' })).toThrow(
      /update-dtype/,
    );
    // An item sketch is formed from the full update; each device clips its sketch, summed or not,
    // so noise is taken either way.
    const sketch = { ...base, rows: 'full', 'item-sketch': '2048' };
    expect(settingsFrom(sketch).itemSketch).toBe(2048);
    expect(settingsFrom(base).itemSketch).toBeUndefined();
    expect(() => settingsFrom({ ...sketch, rows: '512' })).toThrow(/--item-sketch needs/);
    expect(settingsFrom({ ...sketch, epsilon: '2' }).noise).toBeGreaterThan(0);
    expect(settingsFrom({ ...sketch, epsilon: '2', 'per-device': 'on' }).noise).toBeGreaterThan(0);
    expect(() => settingsFrom({ ...sketch, 'item-sketch': '0' })).toThrow(/--item-sketch/);
    // A dense stride is the sketch's, and reaches the server config the rounds run with.
    const strided = settingsFrom({ ...sketch, 'sketch-dense-stride': '10' });
    expect(strided.sketchDenseStride).toBe(10);
    expect(serverConfig(strided, 1000).sketchDenseStride).toBe(10);
    expect(serverConfig(settingsFrom(sketch), 1000).sketchDenseStride).toBe(1);
    expect(runLabel(strided)).toContain('sketch 2048 dense 1/10');
    expect(() => settingsFrom({ ...base, 'sketch-dense-stride': '10' })).toThrow(
      /--sketch-dense-stride needs --item-sketch/,
    );
    for (const bad of ['0', '1001', 'x']) {
      expect(() => settingsFrom({ ...sketch, 'sketch-dense-stride': bad })).toThrow(
        /sketch-dense-stride/,
      );
    }
  });

  it('takes --stale with its bound and layout, prices (s + 1) q, and refuses what it cannot run', () => {
    const stale = settingsFrom({ ...base, stale: '0.5', 'stale-layout': 'carried' });
    expect(stale.stale).toEqual({ share: 0.5, maxStaleness: 2, layout: 'carried' });
    expect(settingsFrom(base).stale).toBeUndefined();
    expect(settingsFrom({ ...base, stale: '0' }).stale).toBeUndefined();
    expect(serverConfig(stale, 1000).maxStaleness).toBe(2);
    expect(serverConfig(settingsFrom(base), 1000).maxStaleness).toBe(0);
    expect(runLabel(stale)).toContain('stale 50% ≤2 carried');
    // --epsilon spends its budget at the server's rate (s + 1) q.
    const s = settingsFrom({ ...base, stale: '0.5', 'max-staleness': '1', epsilon: '2' });
    const spent = computeEpsilon({ noise: s.noise, sampleRate: 0.02, steps: 200, delta: 1e-6 });
    expect(spent.epsilon).toBeLessThanOrEqual(2);
    expect(spent.epsilon).toBeGreaterThan(1.9);
    for (const [flag, value] of [
      ['stale', '1.5'],
      ['stale', '-0.1'],
      ['max-staleness', '0'],
      ['max-staleness', '9'],
      ['stale-layout', 'oldest'],
    ] as const) {
      expect(() => settingsFrom({ ...base, stale: '0.5', [flag]: value })).toThrow(
        new RegExp(`--${flag}`),
      );
    }
    for (const other of [{ secure: 'on' }, { 'round-window': 'on' }, { 'row-choice': 'held' }]) {
      expect(() => settingsFrom({ ...base, stale: '0.5', ...other })).toThrow(/--stale needs/);
    }
  });

  it('spends --epsilon on a round and its noised count-min gate together', () => {
    const gated = {
      ...base,
      rows: 'full',
      'item-sketch': '2048',
      'sketch-gate': 'count-min',
      'gate-noise': '20',
      'gate-cap': '8',
    };
    const s = settingsFrom({ ...gated, epsilon: '2' });
    const gate = s.sketchGate as Exclude<typeof s.sketchGate, 'held' | undefined>;
    expect(gate).toEqual({ buckets: 16384, depth: 2, noise: 20, threshold: 40, cap: 8 });
    // The gate moves by at most √(2 · 8) = 4 per device, so its multiplier is 20 / 4 = 5.
    const combined = 1 / Math.sqrt(1 / s.noise ** 2 + 1 / 25);
    const spent = computeEpsilon({ noise: combined, sampleRate: 0.01, steps: 200, delta: 1e-6 });
    expect(spent.epsilon).toBeLessThanOrEqual(2);
    expect(spent.epsilon).toBeGreaterThan(1.9);
    expect(s.noise).toBeGreaterThan(settingsFrom({ ...base, epsilon: '2' }).noise);
    expect(settingsFrom({ ...gated, 'gate-noise': '0', 'gate-cap': undefined }).sketchGate).toEqual(
      { buckets: 16384, depth: 2, noise: 0, threshold: 0, cap: Infinity },
    );
    expect(() => settingsFrom({ ...gated, 'gate-cap': undefined })).toThrow(/--gate-cap/);
    expect(() => settingsFrom({ ...gated, secure: 'on' })).toThrow(/--gate-noise needs/);
    expect(() => settingsFrom({ ...base, 'sketch-gate': 'count-min' })).toThrow(/--sketch-gate/);
  });
});
