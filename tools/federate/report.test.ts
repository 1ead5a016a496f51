import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markdownReport, readRows, summarise, type FederateRow } from './report.js';

/** The rows of one run: hr, mrr and ε at each round (ε null = infinite). */
function run(
  name: string,
  scenario: FederateRow['scenario'],
  points: readonly (readonly [round: number, hr: number, mrr: number, epsilon: number | null])[],
): FederateRow[] {
  return points.flatMap(([round, hr, mrr, epsilon]) => [
    { run: name, scenario, round, metric: 'hr', k: 20, value: hr },
    { run: name, scenario, round, metric: 'mrr', k: 20, value: mrr },
    { run: name, scenario, round, metric: 'epsilon', k: null, value: epsilon },
    { run: name, scenario, round, metric: 'upload_bytes', k: null, value: 1000 * round },
  ]);
}

const central: FederateRow[] = [
  { run: 'central', scenario: 'central', round: 0, metric: 'hr', k: 20, value: 0.4 },
  { run: 'central', scenario: 'central', round: 0, metric: 'mrr', k: 20, value: 0.2 },
];
const seed = run('seed z=0', 'seed', [
  [0, 0.3, 0.1, null],
  [5, 0.36, 0.12, null],
]);
const noisy = run('new z=1', 'new', [
  [0, 0, 0, 0],
  [5, 0.1, 0.05, 1.5],
  [10, 0.2, 0.0625, 3.25],
]);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-federate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `data` as JSON to a new file in the temporary folder; returns its path. */
async function file(name: string, data: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof data === 'string' ? data : JSON.stringify(data));
  return path;
}

describe('readRows', () => {
  it('reads every file in order', async () => {
    const rows = await readRows([await file('a.json', central), await file('b.json', seed)]);
    expect(rows).toEqual([...central, ...seed]);
  });

  const hr = { run: 'r', scenario: 'new', round: 1, metric: 'hr', k: 20, value: 0.1 };
  it.each([
    ['not an object', [hr, 3], '[1]: is not an object'],
    ['an empty run', [{ ...hr, run: '' }], '[0]: run must be a non-empty string'],
    ['an unknown scenario', [{ ...hr, scenario: 'local' }], '[0]: scenario must be one of'],
    ['a negative round', [{ ...hr, round: -1 }], '[0]: round must be an integer >= 0'],
    ['a fractional round', [{ ...hr, round: 1.5 }], '[0]: round must be an integer >= 0'],
    ['an unknown metric', [{ ...hr, metric: 'ndcg' }], '[0]: metric must be one of'],
    ['hr without k', [{ ...hr, k: null }], '[0]: k must be a positive integer'],
    ['a k on ε', [{ ...hr, metric: 'epsilon' }], '[0]: k must be null'],
    ['a null hr', [{ ...hr, value: null }], '[0]: value must be a finite number'],
    ['a string value', [{ ...hr, value: '0.1' }], '[0]: value must be a finite number'],
    ['a repeated row', [hr, { ...hr, value: 0.2 }], '[1]: repeats run "r" round 1 hr'],
    ['two scenarios', [hr, { ...hr, round: 2, scenario: 'seed' }], '[1]: run "r" is already'],
  ])('rejects %s naming the file and index', async (_, rows, where) => {
    const path = await file('bad.json', rows);
    const error = await readRows([path]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HEARTH_E_DATASET' });
    expect((error as Error).message).toContain(`${path}${where}`);
  });

  it('rejects a file that is not a JSON array', async () => {
    for (const text of ['{"run": 1}', '[{']) {
      const path = await file('bad.json', text);
      await expect(readRows([path])).rejects.toMatchObject({
        code: 'HEARTH_E_DATASET',
        message: expect.stringContaining(path),
      });
    }
  });

  it('accepts a null ε (infinite)', async () => {
    const rows = await readRows([await file('eps.json', seed)]);
    expect(rows.filter((r) => r.metric === 'epsilon').map((r) => r.value)).toEqual([null, null]);
  });
});

describe('summarise', () => {
  it('takes the last round of each metric', () => {
    expect(summarise([...noisy, ...central])).toEqual([
      { run: 'new z=1', scenario: 'new', finalRound: 10, hr: 0.2, mrr: 0.0625, epsilon: 3.25 },
      { run: 'central', scenario: 'central', finalRound: 0, hr: 0.4, mrr: 0.2, epsilon: undefined },
    ]);
  });
});

describe('markdownReport', () => {
  it('sets each run against the central HR@20 in the summary', () => {
    const report = markdownReport([...central, ...seed, ...noisy]);
    const summary = report.slice(report.indexOf('### Summary'));
    expect(summary).toBe(
      [
        '### Summary',
        '',
        '| run | scenario | final round | HR@20 | MRR@20 | ε | HR@20 % of central |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        '| central | central | 0 | 0.4000 | 0.2000 | – | 100.0% |',
        '| seed z=0 | seed | 5 | 0.3600 | 0.1200 | ∞ | 90.0% |',
        '| new z=1 | new | 10 | 0.2000 | 0.0625 | 3.25 | 50.0% |',
        '',
        'Central reference: central, HR@20 0.4000.',
        '',
      ].join('\n'),
    );
  });

  it('writes one table per run, by round', () => {
    const report = markdownReport([...noisy].reverse());
    expect(report).toContain(
      [
        '### new z=1 (new)',
        '',
        '| round | HR@20 | MRR@20 | ε | upload bytes | download bytes | wall s |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        '| 0 | 0.0000 | 0.0000 | 0.00 | 0 | – | – |',
        '| 5 | 0.1000 | 0.0500 | 1.50 | 5000 | – | – |',
        '| 10 | 0.2000 | 0.0625 | 3.25 | 10000 | – | – |',
      ].join('\n'),
    );
  });

  it('leaves out the % column without a central run, and escapes | in labels', () => {
    const piped = seed.map((r) => ({ ...r, run: 'a|b' }));
    const report = markdownReport(piped);
    expect(report).not.toContain('% of central');
    expect(report).not.toContain('Central reference');
    expect(report).toContain('| a\\|b | seed | 5 | 0.3600 | 0.1200 | ∞ |');
  });
});
