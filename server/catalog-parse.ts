/**
 * Catalogue files and feeds into catalogue items (protocol/catalog.ts), every entry checked and
 * every error naming its line or entry:
 *
 *   JSON        an array of { id, title, url, image?, published?, category?, tags? }
 *   JSON Lines  one such object a line (.jsonl, .ndjson)
 *   CSV / TSV   a header naming those columns (tags separated by |)
 *   JSON Feed   version 1 or 1.1 (https://www.jsonfeed.org/version/1.1/)
 *   RSS 2.0, RSS 1.0 (RDF), Atom 1.0
 *   a sitemap   <urlset>, with the image and news extensions where present
 *
 * XML goes through fast-xml-parser and CSV through csv-parse (both widely used and maintained): a
 * feed is what a content site already publishes, in whatever shape its CMS writes it.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import {
  CATALOG_LIMITS,
  catalogItem,
  checkCatalog,
  type CatalogItem,
  type Where,
} from '../protocol/catalog.js';
import { HearthError } from '../protocol/errors.js';
import { jsonLines } from '../protocol/json-lines.js';

/** The formats a catalogue may come in. */
export const CATALOG_FORMATS = ['json', 'jsonl', 'csv', 'tsv', 'jsonfeed', 'xml'] as const;
export type CatalogFormat = (typeof CATALOG_FORMATS)[number];

/** What is known about where a catalogue came from: its name (file or URL) and content type. */
export interface CatalogSource {
  /** A file path or URL, used in messages and to guess the format from its extension. */
  readonly name: string;
  readonly contentType?: string;
}

function bad(source: CatalogSource, problem: string): never {
  throw new HearthError('HEARTH_E_CATALOG', `${source.name}: ${problem}`);
}

/** The format of `text`: from the content type, else the extension, else the first characters. */
export function catalogFormat(text: string, source: CatalogSource): CatalogFormat {
  const type = source.contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/feed+json') return 'jsonfeed';
  if (type === 'application/x-ndjson' || type === 'application/jsonl') return 'jsonl';
  if (type === 'text/csv') return 'csv';
  if (type === 'text/tab-separated-values') return 'tsv';
  if (/[/+]xml$/.test(type)) return 'xml';
  const extension = /\.([a-z]+)(?:[?#].*)?$/i.exec(source.name)?.[1]?.toLowerCase();
  if (extension === 'jsonl' || extension === 'ndjson') return 'jsonl';
  if (extension === 'csv') return 'csv';
  if (extension === 'tsv') return 'tsv';
  if (extension === 'xml' || extension === 'rss' || extension === 'atom') return 'xml';
  const start = text.trimStart();
  if (start.startsWith('<')) return 'xml';
  if (start.startsWith('[')) return 'json';
  if (start.startsWith('{')) {
    // A JSON Feed is one object over many lines; JSON Lines is one object a line.
    const firstLine = start.split('\n', 1)[0]!.trim();
    return /jsonfeed\.org/.test(start.slice(0, 500)) || !firstLine.endsWith('}')
      ? 'jsonfeed'
      : 'jsonl';
  }
  return 'csv';
}

/**
 * The items of a catalogue file or feed, checked (protocol/catalog.ts checkCatalog) and in file
 * order. Throws HEARTH_E_CATALOG naming the line or entry at fault, or HEARTH_E_CATALOG_TOO_LARGE.
 */
export function parseCatalog(text: string, source: CatalogSource): readonly CatalogItem[] {
  const bytes = Buffer.byteLength(text);
  if (bytes > CATALOG_LIMITS.bytes) {
    throw new HearthError(
      'HEARTH_E_CATALOG_TOO_LARGE',
      `${source.name}: ${bytes} bytes, more than ${CATALOG_LIMITS.bytes}`,
    );
  }
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') bad(source, 'the file is empty');
  const format = catalogFormat(body, source);
  const entries = ENTRIES[format](body, source);
  return checkCatalog(
    entries.map((e) => e.item),
    entries.map((e) => e.where),
    source.name,
  );
}

/** An item and where it came from. */
interface Entry {
  readonly item: CatalogItem;
  readonly where: Where;
}

const ENTRIES: Record<CatalogFormat, (text: string, source: CatalogSource) => Entry[]> = {
  json: (text, source) => {
    const value = parseJson(text, source);
    if (!Array.isArray(value)) {
      bad(source, 'a JSON catalogue is an array of items (or a JSON Feed with "version")');
    }
    return value.map((raw, i) => entry(raw, `item ${i + 1}`));
  },
  jsonl: (text, source) =>
    jsonLines(text, (line, problem) => bad(source, `line ${line}: ${problem}`)).map(
      ({ value, line }) => entry(value, `line ${line}`),
    ),
  csv: (text, source) => delimited(text, source, ','),
  tsv: (text, source) => delimited(text, source, '\t'),
  jsonfeed: (text, source) => {
    const feed = parseJson(text, source) as Record<string, unknown> | null;
    if (typeof feed !== 'object' || feed === null || Array.isArray(feed)) {
      bad(source, 'a JSON Feed is an object with "version" and "items"');
    }
    if (!/^https:\/\/jsonfeed\.org\/version\/1(\.1)?$/.test(String(feed.version))) {
      bad(source, `"version" is not a JSON Feed version: ${String(feed.version)}`);
    }
    if (!Array.isArray(feed.items)) bad(source, 'a JSON Feed has an "items" array');
    return (feed.items as unknown[]).map((raw, i) => {
      const it = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const url = it.url ?? it.external_url;
      return entry(
        {
          id: it.id ?? url,
          title: it.title,
          url,
          image: it.image ?? it.banner_image,
          published: it.date_published ?? it.date_modified,
          tags: it.tags,
        },
        `item ${i + 1}`,
      );
    });
  },
  xml: (text, source) => xmlEntries(text, source),
};

function entry(raw: unknown, where: Where): Entry {
  return { item: catalogItem(raw, where), where };
}

function parseJson(text: string, source: CatalogSource): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    return bad(source, `not JSON (${(error as Error).message})`);
  }
}

/** The columns a CSV/TSV catalogue may have; `id`, `title` and `url` are required. */
const COLUMNS = ['id', 'title', 'url', 'image', 'published', 'category', 'tags'] as const;

function delimited(text: string, source: CatalogSource, delimiter: string): Entry[] {
  const fail = (problem: string): never => bad(source, problem);
  const rows = csvRecords(text, delimiter, fail, (names) => {
    for (const required of ['id', 'title', 'url']) {
      if (!names.includes(required)) {
        fail(`line 1: the header has no "${required}" column (${COLUMNS.join(', ')})`);
      }
    }
  });
  return rows.map(({ record, line }) => entry(record, `line ${line}`));
}

/**
 * The rows of CSV or TSV text with a header, as records keyed by the lower-cased, trimmed column
 * names, each with its line number. `header` may refuse the names (by throwing); csv-parse's own
 * complaints (a row of the wrong length, a stray quote) go to `fail` with the line it names.
 */
export function csvRecords(
  text: string,
  delimiter: string,
  fail: (problem: string) => never,
  header: (names: readonly string[]) => void,
): { readonly record: Record<string, string>; readonly line: number }[] {
  let rows: { record: Record<string, string>; info: { lines: number } }[];
  try {
    rows = parseCsv(text, {
      delimiter,
      columns: (names: string[]) => {
        const lower = names.map((name) => name.trim().toLowerCase());
        header(lower);
        return lower;
      },
      info: true,
      skip_empty_lines: true,
      bom: true,
    }) as typeof rows;
  } catch (error) {
    if (error instanceof HearthError) throw error;
    // csv-parse says where: "Invalid Record Length: expect 3, got 2 on line 4".
    return fail((error as Error).message);
  }
  return rows.map(({ record, info }) => ({ record, line: info.lines }));
}

/** fast-xml-parser settings: attributes kept (prefix @_), values as strings, lists always lists. */
const LISTS = new Set(['item', 'entry', 'url', 'link', 'category', 'media:content', 'image:image']);
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: true,
  isArray: (name) => LISTS.has(name),
});

function xmlEntries(text: string, source: CatalogSource): Entry[] {
  // Feeds never need entity declarations; refusing them rules out entity expansion attacks.
  if (/<!ENTITY/i.test(text)) bad(source, 'entity declarations (<!ENTITY) are not accepted');
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    bad(source, `line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`);
  }
  const doc = xml.parse(text) as Record<string, unknown>;
  if (isObject(doc.rss)) return rssEntries(doc.rss, source);
  if (isObject(doc['rdf:RDF'])) return rdfEntries(doc['rdf:RDF']);
  if (isObject(doc.feed)) return atomEntries(doc.feed);
  if (isObject(doc.urlset)) return sitemapEntries(doc.urlset);
  if (doc.sitemapindex !== undefined) {
    bad(source, 'a sitemap index lists sitemaps, not pages: give one of its sitemaps');
  }
  const root = Object.keys(doc).find((k) => !k.startsWith('?')) ?? 'nothing';
  return bad(source, `<${root}> is not RSS, Atom or a sitemap`);
}

type Node = Record<string, unknown>;

function isObject(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The text of an element that may carry attributes (<title type="html">…</title>). */
function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value['#text'] === 'string') return value['#text'];
  return undefined;
}

function list(value: unknown): unknown[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** The first image among media:content / media:thumbnail / an image enclosure. */
function mediaImage(node: Node): string | undefined {
  for (const media of [...list(node['media:content']), ...list(node['media:thumbnail'])]) {
    if (!isObject(media) || typeof media['@_url'] !== 'string') continue;
    const medium = media['@_medium'];
    const type = media['@_type'];
    if (medium === undefined || medium === 'image' || String(type).startsWith('image/')) {
      return media['@_url'];
    }
  }
  const enclosure = node.enclosure;
  if (isObject(enclosure) && String(enclosure['@_type']).startsWith('image/')) {
    return textOf(enclosure['@_url']);
  }
  return undefined;
}

function rssEntries(rss: Node, source: CatalogSource): Entry[] {
  const channel = rss.channel;
  if (!isObject(channel)) bad(source, '<rss> has no <channel>');
  return list(channel.item).map((raw, i) => {
    const item = isObject(raw) ? raw : {};
    const link = textOf(list(item.link)[0]);
    const categories = list(item.category)
      .map(textOf)
      .filter((c) => c !== undefined);
    return entry(
      {
        id: textOf(item.guid) ?? link,
        title: textOf(item.title),
        url: link,
        image: mediaImage(item),
        published: textOf(item.pubDate) ?? textOf(item['dc:date']),
        category: categories[0],
        tags: categories.slice(1),
      },
      `item ${i + 1}`,
    );
  });
}

function rdfEntries(rdf: Node): Entry[] {
  return list(rdf.item).map((raw, i) => {
    const item = isObject(raw) ? raw : {};
    const link = textOf(list(item.link)[0]);
    return entry(
      {
        id: textOf(item['@_rdf:about']) ?? link,
        title: textOf(item.title),
        url: link,
        published: textOf(item['dc:date']),
        category: textOf(item['dc:subject']),
      },
      `item ${i + 1}`,
    );
  });
}

function atomEntries(feed: Node): Entry[] {
  return list(feed.entry).map((raw, i) => {
    const item = isObject(raw) ? raw : {};
    const links = list(item.link).filter(isObject);
    const rel = (l: Node) => (l['@_rel'] as string | undefined) ?? 'alternate';
    const alternate = links.find((l) => rel(l) === 'alternate') ?? links[0];
    const enclosure = links.find(
      (l) => rel(l) === 'enclosure' && String(l['@_type']).startsWith('image/'),
    );
    const terms = list(item.category)
      .map((c) => (isObject(c) ? ((c['@_label'] ?? c['@_term']) as string | undefined) : undefined))
      .filter((c) => c !== undefined);
    return entry(
      {
        id: textOf(item.id) ?? alternate?.['@_href'],
        title: textOf(item.title),
        url: alternate?.['@_href'],
        image: mediaImage(item) ?? enclosure?.['@_href'],
        published: textOf(item.published) ?? textOf(item.updated),
        category: terms[0],
        tags: terms.slice(1),
      },
      `entry ${i + 1}`,
    );
  });
}

/**
 * A sitemap names pages, rarely their titles: the news extension's title, else the image
 * extension's, else one made from the last path segment ("/2026/winter-salads" → "Winter salads").
 */
function sitemapEntries(urlset: Node): Entry[] {
  return list(urlset.url).map((raw, i) => {
    const page = isObject(raw) ? raw : {};
    const loc = textOf(page.loc);
    const news = isObject(page['news:news']) ? page['news:news'] : {};
    const image = list(page['image:image']).find(isObject);
    const keywords = textOf(news['news:keywords']);
    return entry(
      {
        id: loc,
        title: textOf(news['news:title']) ?? textOf(image?.['image:title']) ?? titleFromUrl(loc),
        url: loc,
        image: textOf(image?.['image:loc']),
        published: textOf(news['news:publication_date']) ?? textOf(page.lastmod),
        tags: keywords,
      },
      `url ${i + 1}`,
    );
  });
}

/** "https://site/2026/winter-salads.html" → "Winter salads"; undefined when there is no segment. */
export function titleFromUrl(loc: string | undefined): string | undefined {
  if (loc === undefined) return undefined;
  let path: string;
  try {
    path = new URL(loc).pathname;
  } catch {
    return undefined;
  }
  const segment = path.split('/').filter(Boolean).pop();
  if (!segment) return undefined;
  let words: string;
  try {
    words = decodeURIComponent(segment);
  } catch {
    words = segment;
  }
  words = words
    .replace(/\.[a-z0-9]{1,5}$/i, '')
    .replace(/[-_+]+/g, ' ')
    .trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : undefined;
}
