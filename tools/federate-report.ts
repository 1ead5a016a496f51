/**
 * Report of federated simulation runs (the JSON rows `npm run federate` writes).
 *
 *   npm run federate:report -- --json a.json,b.json [--out <dir>]
 *
 * Prints a markdown table per run and a summary (final HR@20, MRR@20 and ε per run, HR@20 as % of
 * the central run's), and writes hr-by-round.svg and hr-by-epsilon.svg to <dir> (default
 * .hearth/federate/).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderCharts } from './federate/chart.js';
import { markdownReport, readRows } from './federate/report.js';
import { isEntryPoint, runMain } from './lib/entry.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      out: { type: 'string', default: '.hearth/federate' },
    },
  });
  const files = (values.json ?? '').split(',').filter((file) => file !== '');
  if (files.length === 0) throw new Error('--json <file>[,<file>…] is required');
  const rows = await readRows(files.map((file) => resolve(file)));
  console.log(markdownReport(rows));
  for (const path of await renderCharts(rows, resolve(values.out))) console.log(`wrote ${path}`);
}

if (isEntryPoint(import.meta.url)) runMain(main);
