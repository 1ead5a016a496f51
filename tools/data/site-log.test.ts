import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { refusal } from '../../protocol/testing.js';
import { trainAndExport } from '../train/index.js';
import { logSessions, parseSiteLog, siteDataset } from './site-log.js';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'docs', 'examples');

describe('parseSiteLog', () => {
  it('reads CSV, TSV and JSON Lines alike, times as ISO or epoch seconds or milliseconds', () => {
    const csv = parseSiteLog(
      'session,item,time,type\ns1,a,2026-11-30T08:00:00Z,view\ns1,b,1764489660,click\ns1,c,1764489720000,\n',
      'log.csv',
    );
    expect(csv.keyedBy).toBe('session');
    expect(csv.events.map((e) => [e.key, e.item, e.time, e.type, e.line])).toEqual([
      ['s1', 'a', Date.parse('2026-11-30T08:00:00Z'), 'view', 2],
      ['s1', 'b', 1764489660_000, 'click', 3],
      ['s1', 'c', 1764489720_000, 'click', 4],
    ]);
    const tsv = parseSiteLog('visitor\titem\ttime\nv1\ta\t2026-11-30T08:00:00Z\n', 'log.tsv');
    expect(tsv.keyedBy).toBe('visitor');
    const jsonl = parseSiteLog(
      '{"visitor":"v1","item":"a","time":"2026-11-30T08:00:00Z","type":"purchase"}\n\n',
      'log.jsonl',
    );
    expect(jsonl.events[0]).toMatchObject({ key: 'v1', item: 'a', type: 'purchase', line: 1 });
  });

  it('refuses a bad line, naming it', () => {
    const header = 'session,item,time,type\n';
    expect(
      refusal(() => parseSiteLog(`${header}s1,a,yesterday,view\n`, 'l.csv')).message,
    ).toContain('l.csv: line 2: "time" is not a date: yesterday');
    expect(
      refusal(() => parseSiteLog(`${header}s1,,2026-01-01,view\n`, 'l.csv')).message,
    ).toContain('line 2: "item" is missing');
    expect(
      refusal(() => parseSiteLog(`${header}s1,a,2026-01-01,like\n`, 'l.csv')).message,
    ).toContain('line 2: "type" must be one of view, dwell, click, cart, purchase, got like');
    expect(refusal(() => parseSiteLog('user,item,time\nu,a,1\n', 'l.csv')).message).toContain(
      'line 1: the header has neither a "session" nor a "visitor" column',
    );
    expect(refusal(() => parseSiteLog('session,item\ns,a\n', 'l.csv')).message).toContain(
      'the header has no "time" column',
    );
    const json = '{"session":"s","item":"a","time":1}\n{oops\n';
    expect(refusal(() => parseSiteLog(json, 'l.jsonl')).message).toContain('line 2: not JSON');
    expect(refusal(() => parseSiteLog('session,item,time\n', 'l.csv')).message).toContain(
      'no events',
    );
  });
});

describe('logSessions and siteDataset', () => {
  it("cuts a visitor's events at 30 minutes of silence and orders sessions by start", () => {
    const t = (minutes: number) => new Date(Date.UTC(2026, 10, 30, 8, minutes)).toISOString();
    const log = parseSiteLog(
      [
        'visitor,item,time',
        `v1,c,${t(59)}`,
        `v1,a,${t(0)}`,
        `v1,b,${t(29)}`,
        `v2,x,${t(5)}`,
        `v1,d,${t(60)}`,
      ].join('\n'),
      'l.csv',
    );
    expect(logSessions(log).sessions).toEqual([['a', 'b'], ['x'], ['c', 'd']]);
  });

  it('maps through the catalogue: unknown items left out and counted, unlogged items get rows', () => {
    const log = parseSiteLog(
      [
        'session,item,time',
        's1,a,1',
        's1,b,2',
        's1,gone,3',
        's2,b,10',
        's2,a,11',
        's3,a,20',
        's3,b,21',
      ].join('\n'),
      'l.csv',
    );
    const { loaded, report } = siteDataset(log, ['a', 'b', 'new'], 0.34);
    expect(report).toEqual({ events: 6, sessions: 3, unknownEvents: 1, unknownIds: ['gone'] });
    expect(loaded.data.itemIds).toEqual(['', 'a', 'b', 'new']);
    expect(loaded.data.popularity).toEqual([0, 2, 2, 0]);
    expect(loaded.data.train).toEqual([
      [1, 2],
      [2, 1],
    ]);
    expect(loaded.testPairs).toEqual([{ prefix: [1], target: 2 }]);
    expect(refusal(() => siteDataset(log, ['zzz'])).message).toContain('too few to train on');
  });

  it('trains a model over the catalogue from the ten-line example (npm run train -- --sessions)', async () => {
    const out = await mkdtemp(join(tmpdir(), 'hearth-site-model-'));
    try {
      const result = await trainAndExport({
        dataset: 'diginetica',
        loss: 'auto',
        epochs: 1,
        dim: 8,
        hidden: 8,
        sessions: join(EXAMPLES, 'sessions.csv'),
        catalog: join(EXAMPLES, 'catalog.csv'),
        out,
        backend: 'cpu',
        quiet: true,
      });
      const manifest = JSON.parse(
        await (await import('node:fs/promises')).readFile(join(out, 'manifest.json'), 'utf8'),
      ) as { itemIds: string[] };
      // Every catalogue item has a row, logged or not.
      expect(manifest.itemIds).toHaveLength(13);
      expect(new Set(manifest.itemIds)).toEqual(
        new Set(['', ...Array.from({ length: 12 }, (_, i) => `a-${i + 1}`)]),
      );
      expect(result.hr20).toBeGreaterThanOrEqual(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
