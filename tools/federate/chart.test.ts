import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epsilonChartSpec, renderCharts } from './chart.js';
import type { FederateRow } from './report.js';

/** hr and ε rows of one run (ε null = infinite). */
function run(
  name: string,
  scenario: FederateRow['scenario'],
  points: readonly (readonly [round: number, hr: number, epsilon: number | null])[],
): FederateRow[] {
  return points.flatMap(([round, hr, epsilon]) => [
    { run: name, scenario, round, metric: 'hr', k: 20, value: hr },
    { run: name, scenario, round, metric: 'epsilon', k: null, value: epsilon },
  ]);
}

const central = run('central ref', 'central', [[0, 0.4, null]]).filter((r) => r.metric === 'hr');
const runs = [
  ...run('seed plain', 'seed', [
    [0, 0.3, null],
    [5, 0.35, null],
  ]),
  ...run('new noisy', 'new', [
    [0, 0, 0],
    [5, 0.1, 1.5],
    [10, 0.2, 4],
  ]),
  ...run('seed q&a', 'seed', [
    [0, 0.3, 0],
    [10, 0.32, 0.2],
  ]),
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-federate-chart-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Renders into a fresh folder; returns each file's name and text. */
async function render(rows: readonly FederateRow[], folder: string) {
  const paths = await renderCharts(rows, join(dir, folder));
  return Object.fromEntries(
    await Promise.all(paths.map(async (p) => [basename(p), await readFile(p, 'utf8')] as const)),
  );
}

describe('renderCharts', () => {
  it('writes both charts as SVG with every run and the central rule', async () => {
    const svg = await render([...central, ...runs], 'with-central');
    expect(Object.keys(svg)).toEqual(['hr-by-round.svg', 'hr-by-epsilon.svg']);
    for (const text of Object.values(svg)) {
      expect(text.startsWith('<svg')).toBe(true);
      expect(text.trimEnd().endsWith('</svg>')).toBe(true);
      for (const label of ['seed plain', 'new noisy', 'seed q&amp;a', 'central: central ref']) {
        expect(text).toContain(`>${label}</text>`);
      }
    }
    expect(svg['hr-by-epsilon.svg']).toContain('>∞</text>');
  });

  it('renders without a central run', async () => {
    const svg = await render(runs, 'without-central');
    for (const text of Object.values(svg)) {
      expect(text.startsWith('<svg')).toBe(true);
      expect(text).toContain('>new noisy</text>');
      expect(text).not.toContain('central:');
    }
  });

  it('renders rows with no finite ε and no HR at all', async () => {
    const svg = await render(
      [{ run: 'bytes only', scenario: 'new', round: 0, metric: 'wall_s', k: null, value: 1 }],
      'empty',
    );
    expect(Object.values(svg).every((text) => text.startsWith('<svg'))).toBe(true);
  });
});

describe('epsilonChartSpec', () => {
  it('puts infinite ε one decade right of the largest finite ε', () => {
    const spec = epsilonChartSpec([...central, ...runs]) as { layer: { data?: unknown }[] };
    // The first layer (the scenario lines) holds the points every layer draws.
    expect(spec.layer[0]!.data).toEqual({
      values: [
        { run: 'seed plain', scenario: 'seed', epsilon: 100, hr: 0.35 },
        { run: 'new noisy', scenario: 'new', epsilon: 4, hr: 0.2 },
        { run: 'seed q&a', scenario: 'seed', epsilon: 0.2, hr: 0.32 },
      ],
    });
  });
});
