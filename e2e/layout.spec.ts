/**
 * The demo as a site owner would judge it: from a 390 px phone to a wide screen, light and dark, no
 * panel over another, and no serious or critical accessibility violation (axe-core). With
 * HEARTH_SCREENSHOTS=1 the run also writes the README's screenshots into docs/screenshots/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { demoUrl } from './helpers.js';

const screenshots = process.env.HEARTH_SCREENSHOTS
  ? join(import.meta.dirname, '..', 'docs', 'screenshots')
  : null;

async function openDemo(page: Page): Promise<void> {
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  // One click, so the list and the panel show a visitor's state.
  await page.locator('#catalog .card').nth(1).click();
  await expect(page.locator('#stored li').first()).toBeVisible();
}

type Box = { x: number; y: number; width: number; height: number };
const overlap = (a: Box, b: Box) =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

const PANELS = ['header', '#recs-title', '#recs', '#catalog', '#privacy'];

for (const { name, width, height } of [
  { name: 'phone', width: 390, height: 844 },
  { name: 'wide', width: 1280, height: 900 },
]) {
  for (const scheme of ['light', 'dark'] as const) {
    test(`${name} (${width} × ${height}), ${scheme}: no panel overlaps another, no serious axe violation`, async ({
      page,
    }) => {
      await page.setViewportSize({ width, height });
      await page.emulateMedia({ colorScheme: scheme });
      await openDemo(page);
      const boxes = await Promise.all(
        PANELS.map(async (selector) => ({
          selector,
          box: (await page.locator(selector).boundingBox())!,
        })),
      );
      for (const [i, a] of boxes.entries()) {
        expect(a.box.width, `${a.selector} has a width`).toBeGreaterThan(0);
        // Nothing wider than the viewport: no sideways scrolling on a phone.
        expect(a.box.x + a.box.width, `${a.selector} fits`).toBeLessThanOrEqual(width);
        for (const b of boxes.slice(i + 1)) {
          if (a.selector === '#recs-title' && b.selector === '#recs') continue;
          expect(overlap(a.box, b.box), `${a.selector} overlaps ${b.selector}`).toBe(false);
        }
      }
      const { violations } = await new AxeBuilder({ page }).analyze();
      const serious = violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      expect(serious).toEqual([]);
      if (screenshots) {
        mkdirSync(screenshots, { recursive: true });
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({
          path: join(screenshots, `demo-${name}-${scheme}.png`),
          fullPage: name === 'wide',
        });
      }
    });
  }
}

test('the demo is usable from the keyboard: a card takes focus and Enter records it', async ({
  page,
}) => {
  await openDemo(page);
  const card = page.locator('#catalog .card').nth(4);
  const id = (await card.getAttribute('data-hearth-item'))!;
  await card.focus();
  await expect(card).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.locator(`#stored li[data-item="${id}"]`).first()).toBeVisible();
  await expect(page.locator('#viewing-item')).toContainText(id);
});
