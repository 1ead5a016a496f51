import { describe, expect, it } from 'vitest';
import { HearthError } from '../protocol/errors.js';
import {
  MAX_BODY_LIMIT_BYTES,
  fedAdamTauOf,
  parseArgs,
  resolveConfig,
  updateBodyLimit,
} from './config.js';
import { versionLayout } from './versions.js';
import { roundSketch } from '../protocol/item-sketch.js';

describe('parseArgs', () => {
  it('reads every flag, in both spellings', () => {
    const config = parseArgs([
      '--port',
      '9000',
      '--db=/tmp/x.db',
      '--model',
      'models/seed',
      '--min-cohort',
      '5',
      '--clip-norm',
      '0.5',
      '--host',
      '0.0.0.0',
    ]);
    expect(config).toMatchObject({
      port: 9000,
      dbPath: '/tmp/x.db',
      modelDir: 'models/seed',
      minCohort: 5,
      clipNorm: 0.5,
      host: '0.0.0.0',
      maxExamples: 1000,
      serverLearningRate: 1,
    });
  });

  it('has safe defaults', () => {
    expect(parseArgs([])).toMatchObject({ host: '127.0.0.1', minCohort: 100, clipNorm: 1 });
    expect(parseArgs([]).modelDir).toBeUndefined();
  });

  it.each([
    [['--port', 'abc'], /--port must be an integer/],
    [['--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['--port', '1.5'], /--port/],
    [['--min-cohort', '0'], /--min-cohort must be an integer/],
    [['--clip-norm', '-1'], /--clip-norm must be a positive number/],
    [['--clip-norm', 'abc'], /--clip-norm must be a positive number/],
    [['--fedadam-tau', '0'], /--fedadam-tau must be a positive number/],
    [['--clip-norm', 'Infinity'], /--clip-norm/],
    [['--db'], /--db needs a value/],
    [['--model', '--port', '1'], /--model needs a value/],
    [['--host='], /--host must not be empty/],
    [['--bogus', '1'], /--bogus is not a known option/],
    [['--log-level', 'loud'], /--log-level must be one of/],
    [
      ['--noise-multiplier', '-0.5'],
      /noiseMultiplier \(--noise-multiplier\) must be a finite number >= 0/,
    ],
    [['--noise-multiplier', 'abc'], /--noise-multiplier must be a number/],
    [['--sample-rate', '-0.1'], /sampleRate \(--sample-rate\) must be in \[0, 1\]/],
    [['--sample-rate', '1.5'], /--sample-rate/],
    [['--delta', '1'], /delta \(--delta\) must be in \(0, 1\)/],
    [['--epsilon-budget', '0'], /--epsilon-budget must be a positive number/],
    [['--epsilon-budget', '-3'], /--epsilon-budget/],
    [['--max-staleness', '-1'], /--max-staleness must be an integer from 0 to 1000/],
    [['--max-staleness', '1.5'], /--max-staleness must be an integer/],
    [['--trim-fraction', '0.5'], /trimFraction \(--trim-fraction\) must be in \[0, 0.5\)/],
    [
      ['--aggregator', 'mode'],
      /--aggregator must be one of mean, weighted-mean, trimmed-mean, median/,
    ],
    [['--server-optimizer', 'sgd'], /--server-optimizer must be one of fedavg, fedadam/],
    [
      ['--noise-multiplier', '1', '--aggregator', 'median'],
      /aggregator \(--aggregator\) must be 'mean' when --noise-multiplier > 0/,
    ],
  ])('rejects %j', (argv, message) => {
    let caught: unknown;
    try {
      parseArgs(argv);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HearthError);
    expect((caught as HearthError).code).toBe('HEARTH_E_CONFIG');
    expect((caught as HearthError).message).toMatch(message);
  });
});

describe('privacy and optimiser flags', () => {
  it('reads them, with noise on (z = 1.2, q = 0.01, m = 100) and no budget by default', () => {
    expect(parseArgs([])).toMatchObject({
      noiseMultiplier: 1.2,
      minCohort: 100,
      sampleRate: 0.01,
      delta: 1e-6,
      epsilonBudget: Infinity,
      maxStaleness: 2,
      serverOptimizer: 'fedavg',
      aggregator: 'mean',
      trimFraction: 0.1,
    });
    expect(
      parseArgs([
        '--noise-multiplier=1.1',
        '--sample-rate',
        '0.02',
        '--delta',
        '1e-7',
        '--epsilon-budget',
        '8',
        '--server-optimizer',
        'fedadam',
        '--server-learning-rate',
        '0.05',
        '--max-staleness',
        '0',
      ]),
    ).toMatchObject({
      maxStaleness: 0,
      noiseMultiplier: 1.1,
      sampleRate: 0.02,
      delta: 1e-7,
      epsilonBudget: 8,
      serverOptimizer: 'fedadam',
      serverLearningRate: 0.05,
    });
    // The robust aggregators' sensitivity is not S / m: they need noise off, which is not the default.
    expect(() => parseArgs(['--aggregator', 'trimmed-mean'])).toThrow(/must be 'mean' when/);
    expect(
      parseArgs([
        '--aggregator',
        'trimmed-mean',
        '--trim-fraction',
        '0.2',
        '--noise-multiplier',
        '0',
      ]),
    ).toMatchObject({ aggregator: 'trimmed-mean', trimFraction: 0.2 });
  });

  it('gives FedAdam its own default step size', () => {
    expect(parseArgs(['--server-optimizer', 'fedadam']).serverLearningRate).toBe(0.01);
    expect(parseArgs(['--server-optimizer', 'fedavg']).serverLearningRate).toBe(1);
  });

  it("gives FedAdam's tau the noise std with noise on, 1e-3 without, or the flag's", () => {
    expect(fedAdamTauOf(parseArgs(['--noise-multiplier', '0']))).toBe(1e-3);
    // With noise on, the noise std z S / m: 1.2 * 1 / 100 by default.
    expect(fedAdamTauOf(parseArgs([]))).toBeCloseTo(0.012, 12);
    expect(fedAdamTauOf(parseArgs(['--fedadam-tau', '0.05']))).toBe(0.05);
  });
});

describe('config', () => {
  it('validates programmatic configs too', () => {
    expect(() => resolveConfig({ maxExamples: 0 })).toThrow(/maxExamples/);
    expect(() => resolveConfig({ serverLearningRate: NaN })).toThrow(/serverLearningRate/);
  });

  it('sends item sketches of 2,048 buckets by default; --update-rows or off names rows instead', () => {
    expect(parseArgs([]).itemSketch).toBe(2048);
    expect(parseArgs(['--item-sketch', '512']).itemSketch).toBe(512);
    expect(parseArgs(['--item-sketch=off']).itemSketch).toBe('off');
    const rows = parseArgs(['--update-rows', '100']);
    expect(rows).toMatchObject({ itemSketch: 'off', updateRows: 100 });
    expect(resolveConfig({ updateRows: 'full' }).itemSketch).toBe('off');
    expect(parseArgs(['--update-rows', '100', '--item-sketch', 'off']).itemSketch).toBe('off');
    for (const argv of [
      ['--update-rows', '100', '--item-sketch', '512'],
      ['--item-sketch', '0'],
      ['--item-sketch', 'many'],
    ]) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(/item-sketch|itemSketch/);
    }
    // The whole model while the catalogue is within the buckets, then the version's own sketch.
    const config = resolveConfig({ itemSketch: 4 });
    const dims = { items: 5, embedding: 2, hidden: 2, maxSessionLength: 3 };
    const weights = new Float32Array(0);
    expect(versionLayout(config, dims, 7, weights, 1)).toEqual({});
    expect(versionLayout(config, { ...dims, items: 6 }, 7, weights, 1)).toEqual({
      itemSketch: roundSketch(4, 7),
    });
  });

  it('reads --sketch-dense-stride (default 1) and names it in the version sketch', () => {
    expect(parseArgs([]).sketchDenseStride).toBe(1);
    const config = parseArgs(['--item-sketch', '4', '--sketch-dense-stride', '10']);
    expect(config.sketchDenseStride).toBe(10);
    const dims = { items: 6, embedding: 2, hidden: 2, maxSessionLength: 3 };
    const layout = versionLayout(config, dims, 7, new Float32Array(0), 1);
    expect(layout).toEqual({ itemSketch: roundSketch(4, 7, 1, 10) });
    expect(layout.itemSketch!.denseStride).toBe(10);
    expect(
      versionLayout(resolveConfig({ itemSketch: 4 }), dims, 7, new Float32Array(0), 1).itemSketch!
        .denseStride,
    ).toBeUndefined();
    for (const argv of [
      ['--sketch-dense-stride', '0'],
      ['--sketch-dense-stride', '1001'],
      ['--sketch-dense-stride', 'some'],
    ]) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(
        /sketchDenseStride|sketch-dense-stride/,
      );
    }
  });

  it('derives the body limit from the model size, capped', () => {
    const config = resolveConfig({});
    expect(updateBodyLimit(64, config)).toBe(44 + 256);
    expect(updateBodyLimit(100_000_000, config)).toBe(MAX_BODY_LIMIT_BYTES);
    expect(updateBodyLimit(64, resolveConfig({ bodyLimitBytes: 1000 }))).toBe(1000);
  });
});

describe('catalogue and operator flags', () => {
  it('reads --catalog and --catalog-refresh, and the operator token from the environment or a file', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const config = parseArgs(['--catalog', 'https://site.example/feed', '--catalog-refresh', '15']);
    expect(config.catalogSource).toBe('https://site.example/feed');
    expect(config.catalogRefreshMinutes).toBe(15);
    expect(config.operatorToken).toBeUndefined();
    expect(parseArgs([]).catalogRefreshMinutes).toBe(60);

    const token = 'a-long-operator-token-123';
    expect(parseArgs([], { HEARTH_OPERATOR_TOKEN: token }).operatorToken).toBe(token);
    const file = join(mkdtempSync(join(tmpdir(), 'hearth-token-')), 'token');
    writeFileSync(file, `${token}\n`);
    expect(parseArgs(['--operator-token-file', file]).operatorToken).toBe(token);

    expect(() => parseArgs([], { HEARTH_OPERATOR_TOKEN: 'short' })).toThrow(
      /operatorToken .* 16 to 256 printable characters/,
    );
    expect(() => parseArgs(['--operator-token-file', join(file, 'missing')])).toThrow(
      /--operator-token-file cannot read/,
    );
    expect(() => parseArgs(['--catalog-refresh', '-1'])).toThrow(/--catalog-refresh/);
  });
});
