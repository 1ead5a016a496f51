/**
 * `<hearth-recs>` (dist/sdk/hearth-recs.js) on a page of the host origin, with the loader, the worker
 * and the element's module all from the CDN origin: it renders k items from the catalogue, keeps
 * its reserved size, is reachable by keyboard in rank order, reports clicks with their rank, tracks
 * them, re-renders, and renders a lazy instance only once it is scrolled into view.
 */
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { demoItem } from '../tools/demo-catalog.js';
import { cdnUrl, hostUrl, pageErrors } from './helpers.js';

interface ElementEvent {
  readonly type: string;
  readonly id: string;
  readonly detail: Record<string, unknown>;
}

async function recordElementEvents(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const seen: unknown[] = [];
    Object.defineProperty(window, '__recsEvents', { value: seen });
    for (const type of ['hearth-load', 'hearth-click', 'hearth-error']) {
      window.addEventListener(type, (event) => {
        const target = event.target as Element | Window;
        if (target === window) return;
        seen.push({ type, id: (target as Element).id, detail: (event as CustomEvent).detail });
      });
    }
  });
}

const elementEvents = (page: Page): Promise<ElementEvent[]> =>
  page.evaluate(() => (window as unknown as { __recsEvents: ElementEvent[] }).__recsEvents);

/** The item ids the element shows, in rank order. */
const shown = (page: Page, id: string): Promise<string[]> =>
  page
    .locator(`#${id} [part~="link"]`)
    .evaluateAll((links) => links.map((l) => (l as HTMLElement).dataset.hearthItem!));

test('hearth-recs.js is one small ES module with no imports', () => {
  const bytes = readFileSync(join(import.meta.dirname, '..', 'dist', 'sdk', 'hearth-recs.js'));
  const gzip = gzipSync(bytes, { level: 9 }).length;
  const brotli = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
  }).length;
  console.log(`hearth-recs.js: ${bytes.length} B raw, ${gzip} B gzip, ${brotli} B brotli`);
  expect(bytes.toString('utf8')).not.toMatch(/\bimport\s*[{("'*]|\bimport\(/);
  expect(brotli).toBeLessThan(4096);
});

test('<hearth-recs> renders, is keyboard reachable, reports clicks and updates', async ({
  page,
}) => {
  const errors = pageErrors(page);
  await recordElementEvents(page);
  const requests: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  await page.goto(`${hostUrl()}pages/recs.html`);
  const main = page.locator('#main');
  const reserved = (await main.boundingBox())!.height;
  expect(reserved).toBeGreaterThan(100);

  // k items, from the catalogue, in an ordered list with a polite status region.
  const links = main.locator('[part~="link"]');
  await expect(links).toHaveCount(6);
  expect(requests).toContain(`${cdnUrl()}hearth-recs.js`);
  expect(new URL(hostUrl()).origin).not.toBe(new URL(cdnUrl()).origin);
  await expect(main.getByRole('list')).toHaveCount(1);
  await expect(main.getByRole('listitem')).toHaveCount(6);
  await expect(main.locator('[part~="title"]').first()).toHaveText(/^Product \d{3}$/);
  await expect(main.locator('[role="status"][aria-live="polite"]')).toHaveText(
    '6 recommendations loaded',
  );
  const first = await shown(page, 'main');
  expect(await links.first().getAttribute('href')).toBe(`${hostUrl()}pages/recs.html#${first[0]}`);
  expect((await main.boundingBox())!.height).toBe(reserved);
  await expect
    .poll(async () => (await elementEvents(page)).map((e) => e.type))
    .toContain('hearth-load');

  // Tab walks the links in rank order, right after the button before the element.
  await page.locator('#before').focus();
  for (let rank = 1; rank <= 6; rank++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement?.shadowRoot?.activeElement as HTMLElement | undefined;
      return el ? { rank: el.dataset.rank, item: el.dataset.hearthItem } : undefined;
    });
    expect(focused).toEqual({ rank: String(rank), item: first[rank - 1] });
  }
  await page.keyboard.press('Tab');
  await expect(page.locator('#after')).toBeFocused();

  // A view elsewhere on the page is not the visitor acting: the list stays as it is.
  await page.evaluate((item) => {
    window.dispatchEvent(new CustomEvent('hearth-track', { detail: { type: 'view', item } }));
  }, first[0]);
  await page.waitForTimeout(500);
  await expect(main.locator('[role="status"]')).toHaveText('6 recommendations loaded');

  // A click: hearth-click with its rank, the click tracked, and the list re-rendered without it.
  const clicked = first[2]!;
  await links.nth(2).click();
  await expect
    .poll(async () => (await elementEvents(page)).filter((e) => e.type === 'hearth-click'))
    .toEqual([
      {
        type: 'hearth-click',
        id: 'main',
        detail: expect.objectContaining({ itemId: clicked, rank: 3 }),
      },
    ]);
  await expect.poll(() => shown(page, 'main')).not.toEqual(first);
  expect(await shown(page, 'main')).not.toContain(clicked);
  await expect(links).toHaveCount(6);
  await expect(main.locator('[role="status"]')).toHaveText('6 recommendations updated');
  const stored = await page.evaluate(() =>
    (
      window as unknown as { hearth: { stored(): Promise<{ item: string; type: string }[]> } }
    ).hearth.stored(),
  );
  // Tracked once: by the element, not a second time by the loader's capture.
  expect(stored.filter((s) => s.item === clicked)).toEqual([
    expect.objectContaining({ item: clicked, type: 'click' }),
  ]);
  // Nothing was moved under the visitor, and the height stayed what was reserved.
  expect((await main.boundingBox())!.height).toBe(reserved);
  expect(errors).toEqual([]);
});

test('a lazy <hearth-recs> renders only when scrolled into view', async ({ page }) => {
  const errors = pageErrors(page);
  await recordElementEvents(page);
  await page.goto(`${hostUrl()}pages/recs.html`);
  await expect(page.locator('#main [part~="link"]')).toHaveCount(6);
  const lazy = page.locator('#lazy');
  await expect(lazy.locator('[part~="link"]')).toHaveCount(0);
  expect((await elementEvents(page)).filter((e) => e.id === 'lazy')).toEqual([]);

  await lazy.scrollIntoViewIfNeeded();
  await expect(lazy.locator('[part~="link"]')).toHaveCount(3);
  // No catalogue attribute on this one: the titles are the server's catalogue's (the stack serves
  // the demo's), until the page supplies its own by event.
  const ids = await shown(page, 'lazy');
  await expect(lazy.locator('[part~="title"]').first()).toHaveText(demoItem(ids[0]!).title);
  await page.evaluate(
    (id) =>
      window.dispatchEvent(
        new CustomEvent('hearth-recs-catalog', { detail: { [id]: { title: 'Named by event' } } }),
      ),
    ids[0]!,
  );
  await expect(lazy.locator('[part~="title"]').first()).toHaveText('Named by event');
  expect((await elementEvents(page)).filter((e) => e.id === 'lazy').map((e) => e.type)).toEqual([
    'hearth-load',
  ]);
  expect(errors).toEqual([]);
});
