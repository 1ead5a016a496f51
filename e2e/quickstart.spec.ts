/**
 * The README's quick start, run exactly as written: its page is read from README.md (between the
 * quickstart markers), only its two 127.0.0.1 addresses swapped for this test's CDN (dist/sdk/) and
 * a server started as `npm start -- --catalog docs/examples/catalog.csv` starts it (cold, on the
 * catalogue alone, a fresh SQLite file). The page is served from an origin of its own.
 */
import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cdnUrl, pageErrors, recordHearthEvents, seenEvents } from './helpers.js';
import { ownServer } from './own-server.js';

const root = join(import.meta.dirname, '..');

/** The quick-start page as the README prints it. */
function readmePage(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /<!-- quickstart:begin -->\s*```html\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(
    readme,
  );
  if (!block) throw new Error('README.md has no quick-start page between its markers');
  return block[1]!;
}

const backend = ownServer('quickstart', () => ({
  catalogSource: join(root, 'docs', 'examples', 'catalog.csv'),
  // npm start's demo preset.
  minCohort: 3,
  sampleRate: 1,
  noiseMultiplier: 0,
  aggregation: 'plaintext',
  joinsPerRound: 0,
}));
/** Where the page is served: a site of its own (another port is another origin). */
let site: Server;
let pageUrl: string;
let html = '';

test.beforeAll(async () => {
  // Links to the site's own pages answer 204, which keeps the browser on the page.
  site = createServer((req, res) => {
    if (req.url === '/index.html') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    else res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/index.html`;
});

test.afterAll(async () => {
  await new Promise((resolve) => site.close(resolve));
});

test('the quick-start page shows the catalogue and learns from a click', async ({ page }) => {
  const page_ = readmePage();
  expect(page_).toContain('http://127.0.0.1:5173/sdk/hearth.js');
  html = page_
    .replaceAll('http://127.0.0.1:5173/sdk/', cdnUrl())
    .replaceAll('http://127.0.0.1:8787', backend().server.url);
  // Links on the page lead to the shop; a 204 keeps the page where it is.
  await page.route('https://shop.example/**', (route) => route.fulfill({ status: 204 }));
  const errors = pageErrors(page);
  await recordHearthEvents(page);
  // How the browser received the model: the server keeps it compressed.
  const codings = new Map<string, string>();
  page.context().on('response', (response) => {
    const path = new URL(response.url()).pathname;
    const part = path === '/v1/model' ? 'manifest' : path.endsWith('/weights') ? 'weights' : '';
    if (part) {
      void response.allHeaders().then((headers) => {
        codings.set(part, `${response.status()} ${headers['content-encoding'] ?? 'identity'}`);
      });
    }
  });
  await page.goto(pageUrl);

  const titles = page.locator('hearth-recs [part~="title"]');
  // Cold start on a new site: three of the catalogue's items, with their titles and links (which
  // ones depends on whether the two links on the page were already viewed, and so left out).
  const catalogue = new Map(
    readFileSync(join(root, 'docs', 'examples', 'catalog.csv'), 'utf8')
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((line) => [line.split(',')[0]!, line] as const),
  );
  await expect(titles).toHaveCount(3);
  const first = page.locator('hearth-recs a[part~="link"]').first();
  const id = await first.getAttribute('data-hearth-item');
  expect(catalogue.has(id!)).toBe(true);
  expect(catalogue.get(id!)).toContain((await titles.first().textContent())!.replaceAll('"', '""'));
  const href = await first.getAttribute('href');
  expect(new URL(href!).pathname).toMatch(/^\/(products\/)?a-\d+$/);

  await page.locator('a[data-hearth-item="a-1"]').click();
  await expect
    .poll(async () =>
      (await seenEvents(page)).some(
        (e) => e.type === 'hearth-track' && e.detail.type === 'click' && e.detail.item === 'a-1',
      ),
    )
    .toBe(true);
  // The clicked item is in the session now: the list redraws without it, still three long.
  await expect(page.locator('hearth-recs a[data-hearth-item="a-1"]')).toHaveCount(0);
  await expect(titles).toHaveCount(3);
  await expect
    .poll(() => Object.fromEntries(codings))
    .toEqual({ manifest: '200 br', weights: '200 gzip' });
  const events = await seenEvents(page);
  expect(events.filter((e) => e.type === 'hearth-error')).toEqual([]);
  expect(errors).toEqual([]);
});
