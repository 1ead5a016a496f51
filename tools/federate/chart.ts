/**
 * The federated simulation's two charts as SVG files, drawn with Vega-Lite and rendered by Vega
 * headless (`renderer: 'none'`), so Node writes them without a browser or a canvas package.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { View, parse } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { REPORT_K, centralRun, summarise, type FederateRow, type RunSummary } from './report.js';

/** One layer of a layered chart, as Vega-Lite types it. */
type Layer = Extract<TopLevelSpec, { layer: unknown }>['layer'][number];
/** A layer's encoding channels (x, y, color, …). */
type Encoding = NonNullable<Extract<Layer, { mark: unknown }>['encoding']>;

const WIDTH = 560;
const HEIGHT = 320;

/** What every chart shares: size, a white background (SVG viewers default to transparent). */
const BASE = { width: WIDTH, height: HEIGHT, background: 'white' } as const;

/** The central runs' HR@20 as dashed horizontal rules, each labelled at the right edge. */
function centralLayers(central: RunSummary | undefined): Layer[] {
  if (!central) return [];
  const data = { values: [{ label: `central: ${central.run}`, hr: central.hr }] };
  const y: Encoding['y'] = { field: 'hr', type: 'quantitative' };
  return [
    { data, mark: { type: 'rule', color: '#555', strokeDash: [6, 4] }, encoding: { y } },
    {
      data,
      mark: { type: 'text', align: 'right', dx: -4, dy: -6, color: '#555' },
      encoding: { y, x: { value: WIDTH }, text: { field: 'label' } },
    },
  ];
}

/** HR@20 against round, one line per run; the central run is the rule, not a line. */
export function roundChartSpec(rows: readonly FederateRow[]): TopLevelSpec {
  const central = centralRun(summarise(rows));
  const values = rows
    .filter((r) => r.metric === 'hr' && r.k === REPORT_K && r.scenario !== 'central')
    .map((r) => ({ run: r.run, round: r.round, hr: r.value }));
  return {
    ...BASE,
    title: `HR@${REPORT_K} by round`,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'round', type: 'quantitative', title: 'round' },
          y: { field: 'hr', type: 'quantitative', title: `HR@${REPORT_K}` },
          color: { field: 'run', type: 'nominal', scale: { scheme: 'tableau20' } },
        },
      },
      ...centralLayers(central),
    ],
  };
}

/**
 * Each run's final HR@20 against its final ε on a log axis, coloured by scenario. A log axis has no
 * place for ∞ (no noise), so those runs sit one decade right of the largest finite ε, on a tick
 * labelled "∞". ε = 0 (no round spent) has no place on it either, and those runs are left out.
 */
export function epsilonChartSpec(rows: readonly FederateRow[]): TopLevelSpec {
  const summaries = summarise(rows);
  const shown = summaries.filter(
    (s) => s.scenario !== 'central' && s.hr !== undefined && (s.epsilon === null || s.epsilon! > 0),
  );
  const finite = shown.flatMap((s) => (typeof s.epsilon === 'number' ? [s.epsilon] : []));
  const low = finite.length ? Math.floor(Math.log10(Math.min(...finite))) : 0;
  const high = finite.length ? Math.ceil(Math.log10(Math.max(...finite))) : 0;
  const infinity = 10 ** (high + 1);
  const ticks = [...Array.from({ length: high - low + 1 }, (_, i) => 10 ** (low + i)), infinity];
  const values = shown.map((s) => ({
    run: s.run,
    scenario: s.scenario,
    epsilon: s.epsilon ?? infinity,
    hr: s.hr,
  }));
  const x: Encoding['x'] = {
    field: 'epsilon',
    type: 'quantitative',
    title: 'final ε (log scale; ∞ = no noise)',
    scale: { type: 'log', domain: [10 ** low / 2, infinity * 2], nice: false },
    axis: {
      values: ticks,
      labelExpr: `datum.value >= ${infinity} ? '∞' : format(datum.value, '~g')`,
    },
  };
  const y: Encoding['y'] = { field: 'hr', type: 'quantitative', title: `final HR@${REPORT_K}` };
  const color: Encoding['color'] = { field: 'scenario', type: 'nominal', title: 'scenario' };
  return {
    ...BASE,
    title: `Final HR@${REPORT_K} by ε`,
    layer: [
      { data: { values }, mark: 'line', encoding: { x, y, color } },
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 60 },
        encoding: { x, y, color },
      },
      {
        data: { values },
        mark: { type: 'text', align: 'left', dx: 6, dy: -6, fontSize: 9 },
        encoding: { x, y, text: { field: 'run' } },
      },
      ...centralLayers(centralRun(summaries)),
    ],
  };
}

/** Renders a Vega-Lite spec to SVG text without a browser. */
export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes hr-by-round.svg and hr-by-epsilon.svg into `outDir` (made if missing); returns their paths. */
export async function renderCharts(
  rows: readonly FederateRow[],
  outDir: string,
): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const charts = [
    ['hr-by-round.svg', roundChartSpec(rows)],
    ['hr-by-epsilon.svg', epsilonChartSpec(rows)],
  ] as const;
  const paths: string[] = [];
  for (const [name, spec] of charts) {
    const path = join(outDir, name);
    await writeFile(path, await toSvg(spec));
    paths.push(path);
  }
  return paths;
}
