/**
 * A site's own click log, for a warm first model (`npm run train -- --sessions <file>`): CSV or TSV
 * with a header, or JSON Lines, one event a line:
 *
 *   session,item,time,type            (or visitor instead of session)
 *   s1,a-17,2026-11-30T08:00:00Z,view
 *   s1,a-4,2026-11-30T08:01:10Z,click
 *
 * `time` is ISO 8601 or epoch seconds / milliseconds; `type` (optional) is one of the SDK's
 * interaction types. A visitor log is cut into sessions at 30 minutes of silence, as the device does.
 * Every line is checked and a bad one is refused naming its line. With a catalogue, items it does not
 * list are left out (and counted), and every catalogue item gets a model row, logged or not.
 */
import { readFile, stat } from 'node:fs/promises';
import { prefixPairs } from '../../model/metrics.js';
import { INTERACTION_TYPES } from '../../protocol/api.js';
import { HearthError } from '../../protocol/errors.js';
import { jsonLines } from '../../protocol/json-lines.js';
import { csvRecords } from '../../server/catalog-parse.js';
import type { LoadedDataset } from './datasets.js';
import { datasetFromSessions } from './yoochoose.js';

/** The gap that ends a visitor's session (worker/sessions.ts SESSION_GAP_MS). */
const SESSION_GAP_MS = 30 * 60 * 1000;
/** Largest log read (bytes): a site's export, not a data warehouse. */
export const MAX_LOG_BYTES = 1024 * 1024 * 1024;

/** One logged event. */
export interface LogEvent {
  readonly key: string;
  readonly item: string;
  readonly time: number;
  readonly type: (typeof INTERACTION_TYPES)[number];
  /** File order, the tie-break of equal times. */
  readonly line: number;
}

/** What a log holds, and whether its keys are sessions or visitors. */
export interface SiteLog {
  readonly events: readonly LogEvent[];
  readonly keyedBy: 'session' | 'visitor';
}

function bad(file: string, line: number, problem: string): never {
  throw new HearthError('HEARTH_E_DATASET', `${file}: line ${line}: ${problem}`);
}

/** Epoch ms from ISO 8601 text or epoch seconds (< 1e11) / milliseconds. */
function parseTime(value: unknown, file: string, line: number): number {
  const text = String(value ?? '').trim();
  if (text === '') bad(file, line, '"time" is missing');
  if (/^\d+(\.\d+)?$/.test(text)) {
    const n = Number(text);
    return n < 1e11 ? n * 1000 : n;
  }
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) bad(file, line, `"time" is not a date: ${text}`);
  return ms;
}

function event(
  raw: Record<string, unknown>,
  keyedBy: SiteLog['keyedBy'],
  file: string,
  line: number,
): LogEvent {
  const key = String(raw[keyedBy] ?? '').trim();
  if (key === '') bad(file, line, `"${keyedBy}" is missing`);
  const item = String(raw.item ?? '').trim();
  if (item === '') bad(file, line, '"item" is missing');
  const type = raw.type === undefined || raw.type === '' ? 'click' : String(raw.type).trim();
  if (!(INTERACTION_TYPES as readonly string[]).includes(type)) {
    bad(file, line, `"type" must be one of ${INTERACTION_TYPES.join(', ')}, got ${type}`);
  }
  return {
    key,
    item,
    time: parseTime(raw.time, file, line),
    type: type as LogEvent['type'],
    line,
  };
}

/** Reads and checks a log file (CSV, TSV or JSON Lines, told apart by extension, then content). */
export async function readSiteLog(file: string): Promise<SiteLog> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    throw new HearthError('HEARTH_E_DATASET', `${file}: cannot read (${(error as Error).message})`);
  }
  if (size > MAX_LOG_BYTES) bad(file, 0, `${size} bytes, more than ${MAX_LOG_BYTES}`);
  return parseSiteLog((await readFile(file, 'utf8')).replace(/^\uFEFF/, ''), file);
}

/** Parses a log's text; `file` names it in errors and chooses the format by extension. */
export function parseSiteLog(text: string, file: string): SiteLog {
  const jsonl =
    /\.(jsonl|ndjson)$/i.test(file) ||
    (!/\.(csv|tsv)$/i.test(file) && text.trimStart().startsWith('{'));
  if (jsonl) {
    const events: LogEvent[] = [];
    let keyedBy: SiteLog['keyedBy'] | undefined;
    for (const { value, line } of jsonLines(text, (n, problem) => bad(file, n, problem))) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        bad(file, line, 'not an object');
      }
      const record = value as Record<string, unknown>;
      keyedBy ??= 'session' in record ? 'session' : 'visitor';
      events.push(event(record, keyedBy, file, line));
    }
    if (events.length === 0) bad(file, 1, 'no events');
    return { events, keyedBy: keyedBy! };
  }
  const delimiter =
    /\.tsv$/i.test(file) || (text.split('\n', 1)[0] ?? '').includes('\t') ? '\t' : ',';
  let keyedBy: SiteLog['keyedBy'] = 'session';
  const fail = (problem: string): never => {
    throw new HearthError('HEARTH_E_DATASET', `${file}: ${problem}`);
  };
  const rows = csvRecords(text, delimiter, fail, (names) => {
    if (!names.includes('session') && !names.includes('visitor')) {
      bad(file, 1, 'the header has neither a "session" nor a "visitor" column');
    }
    keyedBy = names.includes('session') ? 'session' : 'visitor';
    for (const required of ['item', 'time']) {
      if (!names.includes(required)) bad(file, 1, `the header has no "${required}" column`);
    }
  });
  if (rows.length === 0) bad(file, 2, 'no events');
  return {
    events: rows.map(({ record, line }) => event(record, keyedBy, file, line)),
    keyedBy,
  };
}

/** Sessions of item ids in time order; a visitor's events are cut at 30 minutes of silence. */
export function logSessions(log: SiteLog): { sessions: string[][]; starts: number[] } {
  const byKey = new Map<string, LogEvent[]>();
  for (const e of log.events) {
    let list = byKey.get(e.key);
    if (!list) byKey.set(e.key, (list = []));
    list.push(e);
  }
  const out: { items: string[]; start: number }[] = [];
  for (const events of byKey.values()) {
    events.sort((a, b) => a.time - b.time || a.line - b.line);
    let current: string[] = [];
    let start = events[0]!.time;
    let last = start;
    for (const e of events) {
      if (log.keyedBy === 'visitor' && e.time - last >= SESSION_GAP_MS && current.length > 0) {
        out.push({ items: current, start });
        current = [];
        start = e.time;
      }
      current.push(e.item);
      last = e.time;
    }
    out.push({ items: current, start });
  }
  out.sort((a, b) => a.start - b.start);
  return { sessions: out.map((s) => s.items), starts: out.map((s) => s.start) };
}

/** What reading a log for training reports. */
export interface SiteLogReport {
  readonly events: number;
  readonly sessions: number;
  /** Events left out because the catalogue does not list their item, and a few such ids. */
  readonly unknownEvents: number;
  readonly unknownIds: readonly string[];
}

/**
 * A log as a dataset: sessions of one item are dropped (no next item), the newest `testShare` of the
 * rest is the test split (by start time), and with `catalog` its items not in the log get rows too
 * (at the end, unlogged), while logged items it does not list are left out.
 */
export function siteDataset(
  log: SiteLog,
  catalog?: readonly string[],
  testShare = 0.1,
): { loaded: LoadedDataset; report: SiteLogReport } {
  const known = catalog && new Set(catalog);
  let unknownEvents = 0;
  const unknownIds = new Set<string>();
  const kept = known
    ? log.events.filter((e) => {
        if (known.has(e.item)) return true;
        unknownEvents++;
        unknownIds.add(e.item);
        return false;
      })
    : log.events;
  const { sessions } = logSessions({ events: kept, keyedBy: log.keyedBy });
  const usable = sessions.filter((s) => s.length >= 2);
  if (usable.length < 2) {
    throw new HearthError(
      'HEARTH_E_DATASET',
      `the log has ${usable.length} session(s) of two or more events: too few to train on`,
    );
  }
  const cut = Math.min(usable.length - 1, Math.max(1, Math.round(usable.length * (1 - testShare))));
  const data = datasetFromSessions('site log', usable.slice(0, cut), usable.slice(cut));
  if (catalog) {
    const logged = new Set(data.itemIds);
    for (const id of catalog) {
      if (logged.has(id)) continue;
      data.itemIds.push(id);
      data.popularity.push(0);
    }
  }
  return {
    loaded: { data, testPairs: prefixPairs(data.test), protocol: 'every prefix -> next item' },
    report: {
      events: kept.length,
      sessions: usable.length,
      unknownEvents,
      unknownIds: [...unknownIds].slice(0, 5),
    },
  };
}
