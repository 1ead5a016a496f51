import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateNext, prefixPairs } from '../model/metrics.js';
import { SessionModel } from '../model/session-model.js';
import { MarkovChain, Pop, VSessionKnn } from './baselines/index.js';
import { syntheticDataset } from './data/synthetic.js';
import { runEval } from './eval.js';
import { evaluateModel, modelIndexOf } from './eval/evaluate.js';
import { formatMarkdown, type MetricRow } from './eval/report.js';
import { initNodeBackend } from './tf-node.js';

beforeAll(async () => {
  await initNodeBackend('wasm');
});

describe('runEval', () => {
  it('evaluates baselines on the first n pairs and writes JSON rows', async () => {
    const json = join(await mkdtemp(join(tmpdir(), 'hearth-eval-')), 'out.json');
    const report = await runEval({
      dataset: 'synthetic',
      limit: 300,
      json,
      quiet: true,
      recommenders: [new Pop(), new MarkovChain(), new VSessionKnn()],
    });
    expect(report.pairs).toBe(300);
    expect(report.items).toBe(120);
    const rows = JSON.parse(await readFile(json, 'utf8')) as MetricRow[];
    expect(rows).toEqual(report.rows);
    expect(rows).toHaveLength(3 * 11);
    expect(rows[0]).toEqual({
      model: 'POP',
      dataset: 'synthetic',
      metric: 'hr',
      k: 5,
      value: expect.any(Number),
    });
    expect(new Set(rows.map((r) => `${r.metric}@${r.k}`))).toEqual(
      new Set([
        ...['hr', 'mrr', 'ndcg'].flatMap((m) => [5, 10, 20].map((k) => `${m}@${k}`)),
        'coverage@20',
        'popularity@20',
      ]),
    );
    const value = (model: string, metric: string, k: number) =>
      rows.find((r) => r.model === model && r.metric === metric && r.k === k)!.value;
    // The planted "next item in the topic" order is what a transition model learns.
    expect(value('Markov', 'hr', 5)).toBeGreaterThan(value('POP', 'hr', 5) + 0.3);
    // POP shows the same 20 items to everyone: coverage 20/120, the most popular items.
    expect(value('POP', 'coverage', 20)).toBeCloseTo(20 / 120);
    expect(value('POP', 'popularity', 20)).toBeGreaterThan(value('V-SKNN', 'popularity', 20));
    expect(report.table.split('\n')).toHaveLength(2 + 3);
    expect(report.table).toContain('| V-SKNN |');
  });
});

describe('evaluateModel', () => {
  const data = syntheticDataset({ trainSessions: 50, testSessions: 40 });
  const pairs = prefixPairs(data.test);

  it('matches evaluateNext when the model shares the dataset indices', async () => {
    const model = SessionModel.random(
      { items: data.itemIds.length, embedding: 4, hidden: 6, maxSessionLength: 8 },
      3,
    );
    const mine = await evaluateModel(model, data.itemIds, data, pairs, undefined, 64);
    const reference = await evaluateNext(model, pairs, [5, 10, 20]);
    expect(mine.hr).toEqual(reference.hr);
    for (const k of [5, 10, 20]) expect(mine.mrr[k]).toBeCloseTo(reference.mrr[k]!, 12);
    model.dispose();
  });

  it('maps items through the manifest ids when the model indexed them differently', async () => {
    const model = SessionModel.random(
      { items: data.itemIds.length, embedding: 4, hidden: 6, maxSessionLength: 8 },
      5,
    );
    // The model's index m holds the dataset's item N - m.
    const n = data.itemIds.length;
    const modelIds = data.itemIds.map((id, m) => (m === 0 ? id : data.itemIds[n - m]!));
    expect([...modelIndexOf(data.itemIds, modelIds)].slice(0, 3)).toEqual([-1, n - 1, n - 2]);
    const mine = await evaluateModel(model, modelIds, data, pairs);
    const inModelIndices = pairs.map((p) => ({
      prefix: p.prefix.map((d) => n - d),
      target: n - p.target,
    }));
    const reference = await evaluateNext(model, inModelIndices, [5, 10, 20]);
    expect(mine.hr).toEqual(reference.hr);
    model.dispose();
  });
});

describe('formatMarkdown', () => {
  it('prints one row per model with HR/MRR/NDCG at 5/10/20, coverage and popularity', () => {
    const metrics = {
      count: 1,
      hr: { 5: 1, 10: 1, 20: 1 },
      mrr: { 5: 0.5, 10: 0.5, 20: 0.5 },
      ndcg: { 5: 0.25, 10: 0.25, 20: 0.25 },
      listK: 20,
      coverage: 0.125,
      popularity: 0.75,
    };
    const [head, rule, row] = formatMarkdown([{ model: 'X', metrics }]).split('\n');
    expect(head).toBe(
      '| model | HR@5 | HR@10 | HR@20 | MRR@5 | MRR@10 | MRR@20 | NDCG@5 | NDCG@10 | NDCG@20 | Cov@20 | Pop@20 |',
    );
    expect(rule).toBe('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    expect(row).toBe(
      '| X | 1.0000 | 1.0000 | 1.0000 | 0.5000 | 0.5000 | 0.5000 | 0.2500 | 0.2500 | 0.2500 | 0.1250 | 0.7500 |',
    );
  });
});
