import { describe, expect, it } from 'vitest';
import { HearthError } from '../protocol/errors.js';
import { MAX_BODY_LIMIT_BYTES, parseArgs, resolveConfig, updateBodyLimit } from './config.js';

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
    expect(parseArgs([])).toMatchObject({ host: '127.0.0.1', minCohort: 3, clipNorm: 1 });
    expect(parseArgs([]).modelDir).toBeUndefined();
  });

  it.each([
    [['--port', 'abc'], /--port must be an integer/],
    [['--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['--port', '1.5'], /--port/],
    [['--min-cohort', '0'], /--min-cohort must be an integer/],
    [['--clip-norm', '-1'], /--clip-norm must be a positive number/],
    [['--clip-norm', 'abc'], /--clip-norm must be a positive number/],
    [['--clip-norm', 'Infinity'], /--clip-norm/],
    [['--db'], /--db needs a value/],
    [['--model', '--port', '1'], /--model needs a value/],
    [['--host='], /--host must not be empty/],
    [['--bogus', '1'], /--bogus is not a known option/],
    [['--log-level', 'loud'], /--log-level must be one of/],
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

describe('config', () => {
  it('validates programmatic configs too', () => {
    expect(() => resolveConfig({ maxExamples: 0 })).toThrow(/maxExamples/);
    expect(() => resolveConfig({ serverLearningRate: NaN })).toThrow(/serverLearningRate/);
  });

  it('derives the body limit from the model size, capped', () => {
    const config = resolveConfig({});
    expect(updateBodyLimit(64, config)).toBe(44 + 256);
    expect(updateBodyLimit(100_000_000, config)).toBe(MAX_BODY_LIMIT_BYTES);
    expect(updateBodyLimit(64, resolveConfig({ bodyLimitBytes: 1000 }))).toBe(1000);
  });
});
