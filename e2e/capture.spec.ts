/**
 * Automatic capture on a host site (SDK from the CDN origin): clicks, views (half an item on screen
 * for a second), dwell (ten seconds on screen on one page) and single-page-app navigations, which
 * start a new page so an item still on screen can be viewed again. An item in a recommendation slot
 * (`data-hearth-slot`, always on screen here) is never viewed nor dwelled on, only clicked. The page's clock is Playwright's
 * fake one, advanced explicitly, so the thresholds are checked exactly without real waits.
 */
import { expect, test, type Page } from '@playwright/test';
import { hostUrl, pageErrors, recordHearthEvents, seenEvents } from './helpers.js';

/** What these tests call on the page's `window.hearth`. */
interface HearthOnPage {
  forget(item?: string): Promise<void>;
  stored(): Promise<{ type: string; item: string }[]>;
}

/** Interactions Hearth stored, as "type:item", in the order they happened. */
const tracked = async (page: Page): Promise<string[]> =>
  (await seenEvents(page))
    .filter((e) => e.type === 'hearth-track')
    .map((e) => `${String(e.detail.type)}:${String(e.detail.item)}`);

/** Opens the capture page with a fake clock and waits until capture is listening. */
async function open(page: Page, search = ''): Promise<void> {
  await recordHearthEvents(page);
  // Time stands still in the page until the test moves it with runFor.
  await page.clock.install({ time: new Date('2026-11-22T12:00:00Z') });
  await page.clock.pauseAt(new Date('2026-11-22T12:00:01Z'));
  const captureLoaded = page.waitForResponse((r) => r.url().endsWith('/hearth-capture.js'));
  await page.goto(`${hostUrl()}pages/capture.html${search}`);
  expect((await captureLoaded).status()).toBe(200);
  await expect
    .poll(async () => (await seenEvents(page)).map((e) => e.type))
    .toContain('hearth-ready');
  await settle(page);
}

/**
 * Waits until the browser has rendered and delivered IntersectionObserver records. The page's clock
 * (timers, requestAnimationFrame) is paused, its rendering is not: a new observer's first record
 * comes in the same rendering update as those of the observers created before it, or a later one.
 */
async function settle(page: Page): Promise<void> {
  await page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const probe = new IntersectionObserver(() => {
          probe.disconnect();
          resolve();
        });
        probe.observe(document.body);
      }),
  );
}

const sorted = (list: string[]): string[] => [...list].sort();

test('views need half an item on screen for a second, dwell adds up, clicks are clicks', async ({
  page,
}) => {
  const errors = pageErrors(page);
  await open(page);
  // At the top of a 1280x720 viewport: the header item and a-1 are on screen, and 86% of a-2.
  await page.clock.runFor(900);
  await page.waitForTimeout(200);
  expect(await tracked(page)).toEqual([]);
  await page.clock.runFor(200);
  await expect
    .poll(async () => sorted(await tracked(page)))
    .toEqual(['view:a-1', 'view:a-2', 'view:featured']);

  // Scrolled: a-2 stays (87%), a-3 comes fully into view, a-4 shows only 26% and is not viewed.
  await page.evaluate(() => window.scrollTo(0, 500));
  await settle(page);
  await page.clock.runFor(1100);
  await expect.poll(() => tracked(page)).toContain('view:a-3');
  expect((await tracked(page)).filter((t) => t.startsWith('view:'))).toHaveLength(4);

  // a-2 has now been on screen for 2.2 s; 8 more make ten. Nothing else was on screen that long.
  await page.clock.runFor(8000);
  await expect.poll(() => tracked(page)).toContain('dwell:a-2');
  expect((await tracked(page)).filter((t) => t.startsWith('dwell:'))).toEqual(['dwell:a-2']);

  await page.locator('[data-hearth-item="a-3"]').click();
  await expect.poll(() => tracked(page)).toContain('click:a-3');
  // On screen from the start, in the slot: no view, no dwell; a click on it is a click.
  expect((await tracked(page)).filter((t) => t.endsWith(':shown'))).toEqual([]);
  await page.locator('[data-hearth-item="shown"]').click();
  await expect.poll(() => tracked(page)).toContain('click:shown');
  const stored = await page.evaluate(async () => {
    const h = (
      window as unknown as { hearth: { stored(): Promise<{ type: string; item: string }[]> } }
    ).hearth;
    return (await h.stored()).map((s) => `${s.type}:${s.item}`);
  });
  expect(sorted(stored)).toEqual(sorted(await tracked(page)));
  // The page's ids are not in the demo catalogue the server holds: said once, with its code.
  const unknown = (await seenEvents(page)).filter(
    (e) => e.type === 'hearth-error' && e.detail.code === 'HEARTH_E_UNKNOWN_ITEM',
  );
  expect(unknown).toHaveLength(1);
  expect(String(unknown[0]!.detail.message)).toMatch(
    /^"(a-1|a-2|featured)" is not in the catalogue v1/,
  );
  expect(errors).toEqual([]);
});

test('an erased item is not captured again from what was on screen before, only from a click', async ({
  page,
}) => {
  const errors = pageErrors(page);
  await open(page);
  await page.clock.runFor(1100);
  await expect
    .poll(async () => sorted(await tracked(page)))
    .toEqual(['view:a-1', 'view:a-2', 'view:featured']);
  // a-2 has been on screen for 6.1 s when the visitor erases it; 5 s later it would make ten.
  await page.clock.runFor(5000);
  await page.evaluate(() => (window as unknown as { hearth: HearthOnPage }).hearth.forget('a-2'));
  await page.clock.runFor(5000);
  await expect.poll(() => tracked(page)).toContain('dwell:a-1');
  expect((await tracked(page)).filter((t) => t.endsWith(':a-2'))).toEqual(['view:a-2']);
  const storedItems = () =>
    page.evaluate(async () =>
      (await (window as unknown as { hearth: HearthOnPage }).hearth.stored()).map(
        (s) => `${s.type}:${s.item}`,
      ),
    );
  expect((await storedItems()).filter((t) => t.endsWith(':a-2'))).toEqual([]);

  // Everything erased: what is on screen stays spent for this page; a-3, never on screen before,
  // is viewed when it comes into view; a click on a-2 is a click.
  const before = (await tracked(page)).length;
  await page.evaluate(() => (window as unknown as { hearth: HearthOnPage }).hearth.forget());
  await page.evaluate(() => window.scrollTo(0, 500));
  await settle(page);
  await page.clock.runFor(1100);
  await expect.poll(async () => (await tracked(page)).slice(before)).toEqual(['view:a-3']);
  await page.locator('[data-hearth-item="a-2"]').click();
  await expect.poll(async () => (await tracked(page)).slice(before)).toContain('click:a-2');
  expect(sorted(await storedItems())).toEqual(['click:a-2', 'view:a-3']);
  expect(errors).toEqual([]);
});

test('an item many screens tall counts once it fills half the screen', async ({ page }) => {
  await open(page);
  const top = await page.locator('#long-read').evaluate((el) => el.getBoundingClientRect().top);
  // Its top edge a third of the way up the screen: a third of the screen, not counted yet.
  await page.evaluate((y) => window.scrollTo(0, y - 480), top);
  await settle(page);
  await page.clock.runFor(1100);
  await page.waitForTimeout(200);
  expect(await tracked(page)).not.toContain('view:long-read');
  // Scrolled into it: it fills the screen (about 12% of it is visible).
  await page.evaluate((y) => window.scrollTo(0, y + 1000), top);
  await settle(page);
  await page.clock.runFor(1100);
  await expect.poll(() => tracked(page)).toContain('view:long-read');
  await page.clock.runFor(9000);
  await expect.poll(() => tracked(page)).toContain('dwell:long-read');
});

for (const mode of ['the Navigation API', 'history.pushState alone'] as const) {
  test(`a single-page navigation starts a new page (${mode})`, async ({ page }) => {
    if (mode === 'history.pushState alone') {
      // A browser without the Navigation API: capture falls back to wrapping the history methods.
      await page.addInitScript(() =>
        Object.defineProperty(window, 'navigation', { value: undefined, configurable: true }),
      );
    }
    await open(page);
    await page.clock.runFor(1100);
    // Every view of the first page is in before the navigation: each is stored, then reported.
    await expect
      .poll(async () => sorted(await tracked(page)))
      .toEqual(['view:a-1', 'view:a-2', 'view:featured']);
    const before = (await tracked(page)).length;

    await page.locator('#next').click();
    await expect(page.locator('[data-hearth-item="b-1"]')).toBeVisible();
    await settle(page);
    await page.clock.runFor(1100);
    // The header item is on the new page too: viewed again. The new list's items are picked up.
    await expect
      .poll(async () => sorted((await tracked(page)).slice(before)))
      .toEqual(['view:b-1', 'view:b-2', 'view:featured']);
    const wrapped = await page.evaluate(() => !String(history.pushState).includes('[native code]'));
    expect(wrapped).toBe(mode === 'history.pushState alone');

    // A hash change is not a new page.
    await page.evaluate(() => {
      location.hash = 'reviews';
    });
    await settle(page);
    await page.clock.runFor(1100);
    await page.waitForTimeout(200);
    expect((await tracked(page)).slice(before)).toHaveLength(3);
  });
}
