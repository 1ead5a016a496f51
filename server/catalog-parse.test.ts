import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOG_LIMITS } from '../protocol/catalog.js';
import { refusal } from '../protocol/testing.js';
import { catalogFormat, parseCatalog, titleFromUrl } from './catalog-parse.js';

const fixture = (name: string): string =>
  readFileSync(join(import.meta.dirname, 'catalog-fixtures', name), 'utf8');

describe('parseCatalog on real-shaped feeds', () => {
  it('reads an RSS 2.0 feed as WordPress writes it (CDATA, entities, media, enclosures)', () => {
    const items = parseCatalog(fixture('rss.xml'), { name: 'rss.xml' });
    expect(items).toEqual([
      {
        id: 'https://ember.example/?p=4121',
        title: 'Salt & Cedar: a winter kitchen',
        url: 'https://ember.example/2026/12/salt-and-cedar/',
        image: 'https://ember.example/wp-content/uploads/salt-cedar.jpg',
        published: '2026-12-02T08:00:00.000Z',
        category: 'Food',
        tags: ['winter', 'cooking'],
      },
      {
        id: 'https://ember.example/2026/11/knots/',
        title: 'Knots every sailor should know & why',
        url: 'https://ember.example/2026/11/knots/',
        image: 'https://ember.example/img/knots.png',
        published: '2026-11-30T17:30:00.000Z',
        category: 'Craft',
      },
      {
        // No guid: the link is the id.
        id: 'https://ember.example/2026/11/slow-train/',
        title: 'A week on the slow train',
        url: 'https://ember.example/2026/11/slow-train/',
        published: '2026-11-27T05:00:00.000Z',
      },
    ]);
  });

  it('reads an Atom feed: the alternate link, image enclosures and thumbnails, category labels', () => {
    const items = parseCatalog(fixture('atom.xml'), { name: 'atom.xml' });
    expect(items).toEqual([
      {
        id: 'tag:copper.example,2026:tides',
        title: 'Tide tables, explained',
        url: 'https://copper.example/tides',
        image: 'https://copper.example/tides.jpg',
        published: '2026-12-01T08:30:00.000Z',
        category: 'The sea',
        tags: ['science'],
      },
      {
        id: 'tag:copper.example,2026:lanterns',
        title: 'Lantern repairs',
        url: 'https://copper.example/lanterns',
        image: 'https://copper.example/lanterns-thumb.jpg',
        published: '2026-11-20T12:00:00.000Z',
      },
    ]);
  });

  it('reads a JSON Feed 1.1', () => {
    const items = parseCatalog(fixture('feed.json'), { name: 'feed.json' });
    expect(items).toEqual([
      {
        id: '2461',
        title: 'Mapping the northern ridge',
        url: 'https://atlas.example/maps/northern-ridge',
        image: 'https://atlas.example/img/ridge.webp',
        published: '2026-11-29T19:00:00.000Z',
        tags: ['maps', 'hiking'],
      },
      { id: '2460', title: 'The orchard in autumn', url: 'https://atlas.example/maps/orchard' },
    ]);
  });

  it('reads a sitemap: news and image titles where given, else a title from the path', () => {
    const items = parseCatalog(fixture('sitemap.xml'), { name: 'sitemap.xml' });
    expect(items).toEqual([
      {
        id: 'https://paper.example/2026/12/winter-salads',
        title: 'Winter salads',
        url: 'https://paper.example/2026/12/winter-salads',
        image: 'https://paper.example/img/salads.jpg',
        published: '2026-12-02T00:00:00.000Z',
      },
      {
        id: 'https://paper.example/news/harbour-reopens.html',
        title: 'The harbour reopens after the storm',
        url: 'https://paper.example/news/harbour-reopens.html',
        published: '2026-12-03T07:15:00.000Z',
        tags: ['harbour', 'storm'],
      },
      {
        id: 'https://paper.example/about_the_team',
        title: 'About the team',
        url: 'https://paper.example/about_the_team',
      },
    ]);
  });

  it('reads RSS 1.0 (RDF)', () => {
    const rdf = `<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://old.example/"><title>Old</title></channel>
  <item rdf:about="https://old.example/1"><title>First</title><link>https://old.example/1</link>
    <dc:date>2026-01-02T03:04:05Z</dc:date><dc:subject>History</dc:subject></item>
</rdf:RDF>`;
    expect(parseCatalog(rdf, { name: 'index.rdf' })).toEqual([
      {
        id: 'https://old.example/1',
        title: 'First',
        url: 'https://old.example/1',
        published: '2026-01-02T03:04:05.000Z',
        category: 'History',
      },
    ]);
  });

  it('reads CSV (quotes, relative links, tags split on |) and the same rows as TSV and JSON Lines', () => {
    const csv = parseCatalog(fixture('catalog.csv'), { name: 'catalog.csv' });
    expect(csv).toEqual([
      {
        id: 'a-1',
        title: 'Salt, cedar and smoke',
        url: 'https://shop.example/a-1',
        image: 'https://shop.example/a-1.jpg',
        published: '2026-11-30T08:00:00.000Z',
        category: 'Kitchen',
        tags: ['cooking', 'winter'],
      },
      {
        id: 'a-2',
        title: 'Linen apron',
        url: '/products/a-2',
        published: '2026-12-01T00:00:00.000Z',
        category: 'Kitchen',
      },
      { id: 'a-3', title: 'The "quiet" kettle', url: 'https://shop.example/a-3' },
    ]);
    const jsonl = csv.map((item) => JSON.stringify(item)).join('\n');
    expect(parseCatalog(jsonl, { name: 'items.jsonl' })).toEqual(csv);
    expect(parseCatalog(JSON.stringify(csv, null, 2), { name: 'items.json' })).toEqual(csv);
    const tsv = ['id\ttitle\turl\tcategory', 'x\tOne\t/x\tA', 'y\tTwo\t/y\t'].join('\n');
    expect(parseCatalog(tsv, { name: 'items.tsv' })).toEqual([
      { id: 'x', title: 'One', url: '/x', category: 'A' },
      { id: 'y', title: 'Two', url: '/y' },
    ]);
  });

  it('tells formats apart by content type, extension, then the first characters', () => {
    expect(catalogFormat('{}', { name: 'x', contentType: 'application/feed+json' })).toBe(
      'jsonfeed',
    );
    expect(
      catalogFormat('', { name: 'x', contentType: 'application/rss+xml; charset=utf-8' }),
    ).toBe('xml');
    expect(catalogFormat('', { name: 'https://a.example/items.ndjson?x=1' })).toBe('jsonl');
    expect(catalogFormat('  <rss/>', { name: 'feed' })).toBe('xml');
    expect(catalogFormat('[{"id":1}]', { name: 'items' })).toBe('json');
    expect(catalogFormat('{"id":"a","title":"b","url":"/a"}\n{"id":"b"}', { name: 'items' })).toBe(
      'jsonl',
    );
    expect(catalogFormat(fixture('feed.json'), { name: 'feed' })).toBe('jsonfeed');
    expect(catalogFormat('id,title,url\n', { name: 'items' })).toBe('csv');
  });
});

describe('parseCatalog refuses broken input, naming the line or entry', () => {
  it('malformed XML: the line and column', () => {
    const broken = fixture('rss.xml').replace(
      '</title>\n    <link>https://ember.example/2026/11',
      '\n    <link>https://ember.example/2026/11',
    );
    const error = refusal(() => parseCatalog(broken, { name: 'rss.xml' }));
    expect(error.code).toBe('HEARTH_E_CATALOG');
    expect(error.message).toMatch(/rss\.xml: line 33, column 3: Expected closing tag 'title'/);
  });

  it('an item without a title: which item', () => {
    const json = JSON.stringify([
      { id: 'a', title: 'A', url: '/a' },
      { id: 'b', url: '/b' },
    ]);
    const error = refusal(() => parseCatalog(json, { name: 'items.json' }));
    expect(error.code).toBe('HEARTH_E_CATALOG');
    expect(error.message).toContain('item 2: "title" is missing');
  });

  it('a duplicate id: both places', () => {
    const lines = ['{"id":"a","title":"A","url":"/a"}', '', '{"id":"a","title":"B","url":"/b"}'];
    const error = refusal(() => parseCatalog(lines.join('\n'), { name: 'items.jsonl' }));
    expect(error.message).toContain('items.jsonl, line 3: duplicate id "a" (first at line 1)');
  });

  it('a CSV without a required column, and a row of the wrong length', () => {
    expect(refusal(() => parseCatalog('id,url\na,/a\n', { name: 'c.csv' })).message).toContain(
      'line 1: the header has no "title" column',
    );
    const short = refusal(() => parseCatalog('id,title,url\na,A,/a\nb,B\n', { name: 'c.csv' }));
    expect(short.code).toBe('HEARTH_E_CATALOG');
    expect(short.message).toMatch(/c\.csv: .*line 3/);
  });

  it('links that are not http(s) or a site path', () => {
    for (const url of [
      'javascript:alert(1)',
      'data:text/html,x',
      'www.example.com/a',
      '//evil/x',
    ]) {
      const error = refusal(() =>
        parseCatalog(JSON.stringify([{ id: 'a', title: 'A', url }]), { name: 'c.json' }),
      );
      expect(error.message).toContain('item 1: "url"');
    }
  });

  it('a date that is not one, a non-JSON line, an empty file, a sitemap index, an unknown root', () => {
    const date = [{ id: 'a', title: 'A', url: '/a', published: 'yesterday' }];
    expect(refusal(() => parseCatalog(JSON.stringify(date), { name: 'c.json' })).message).toContain(
      'item 1: "published" is not a date',
    );
    expect(
      refusal(() => parseCatalog('{"id":"a","title":"A","url":"/a"}\n{oops}', { name: 'c.jsonl' }))
        .message,
    ).toContain('line 2: not JSON');
    expect(refusal(() => parseCatalog(' \n', { name: 'c.json' })).message).toContain('empty');
    const index =
      '<sitemapindex><sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>';
    expect(refusal(() => parseCatalog(index, { name: 's.xml' })).message).toContain(
      'sitemap index',
    );
    expect(refusal(() => parseCatalog('<html><body/></html>', { name: 'p' })).message).toContain(
      '<html> is not RSS, Atom or a sitemap',
    );
  });

  it('entity declarations (no entity expansion)', () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
<rss><channel><item><title>&lol2;</title><link>https://a.example/</link></item></channel></rss>`;
    expect(refusal(() => parseCatalog(bomb, { name: 'f.xml' })).message).toContain('<!ENTITY');
  });

  it('a file past the byte limit (a 50 MB upload) as HEARTH_E_CATALOG_TOO_LARGE', () => {
    const huge = 'x'.repeat(50 * 1024 * 1024);
    const error = refusal(() => parseCatalog(huge, { name: 'big.csv' }));
    expect(error.code).toBe('HEARTH_E_CATALOG_TOO_LARGE');
    expect(error.message).toContain(`more than ${CATALOG_LIMITS.bytes}`);
  });
});

describe('titleFromUrl', () => {
  it('makes a title from the last path segment', () => {
    expect(titleFromUrl('https://a.example/2026/winter-salads.html')).toBe('Winter salads');
    expect(titleFromUrl('https://a.example/caf%C3%A9_au_lait/')).toBe('Café au lait');
    expect(titleFromUrl('https://a.example/')).toBeUndefined();
    expect(titleFromUrl('not a url')).toBeUndefined();
  });
});
