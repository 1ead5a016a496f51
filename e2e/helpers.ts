/**
 * Small helpers shared by the e2e specs: where the stack's origins are, and a recorder for the
 * events the SDK dispatches on window (installed before any page script runs, so none is missed).
 */
import { expect, type Page } from '@playwright/test';
import { join } from 'node:path';

/** The demo, served by Vite on its own origin, loading the SDK from that same origin. */
export const demoUrl = (): string => process.env.HEARTH_DEMO_URL!;
/** The aggregation server. */
export const serverUrl = (): string => process.env.HEARTH_SERVER_URL!;
/** The "CDN" origin serving dist/sdk/ (trailing slash). */
export const cdnUrl = (): string => process.env.HEARTH_CDN_URL!;
/** The host site on a third origin: the demo and e2e/pages/ with the SDK from the CDN. */
export const hostUrl = (): string => process.env.HEARTH_HOST_URL!;
/** The stack's temporary folder: the served model is in its `model/`. */
export const stackDir = (): string => process.env.HEARTH_E2E_DIR!;
/** The model the stack serves, for specs that start a server of their own on it. */
export const stackModelDir = (): string => join(stackDir(), 'model');

/** Headers that make a request the operator's (the stack's token): full /v1/stats, /metrics. */
export const asOperator = (): Record<string, string> => ({
  authorization: `Bearer ${process.env.HEARTH_E2E_OPERATOR_TOKEN!}`,
});

/** One event the SDK dispatched on window. */
export interface SeenEvent {
  readonly type: string;
  readonly detail: { code?: string; message?: string } & Record<string, unknown>;
}

/** Records `hearth-*` events on every page load; read them back with `seenEvents`. */
export async function recordHearthEvents(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const seen: unknown[] = [];
    Object.defineProperty(window, '__hearthEvents', { value: seen });
    for (const type of ['hearth-ready', 'hearth-error', 'hearth-track']) {
      window.addEventListener(type, (event) =>
        seen.push({ type, detail: (event as CustomEvent).detail }),
      );
    }
  });
}

/** The events recorded so far on the current page. */
export function seenEvents(page: Page): Promise<SeenEvent[]> {
  return page.evaluate(() => (window as unknown as { __hearthEvents: SeenEvent[] }).__hearthEvents);
}

/** Collects uncaught errors and unhandled rejections of the page. */
export function pageErrors(page: Page): Error[] {
  const errors: Error[] = [];
  page.on('pageerror', (error) => errors.push(error));
  return errors;
}

/**
 * Stops the page's clock (timers, Date, requestAnimationFrame) before it loads. Hearth then captures
 * clicks alone: views and dwell wait on timers that never fire. For tests that count interactions
 * exactly; the engine in the worker keeps real time.
 */
export async function clicksOnly(page: Page): Promise<void> {
  await page.clock.install({ time: new Date('2026-11-22T12:00:00Z') });
  await page.clock.pauseAt(new Date('2026-11-22T12:00:01Z'));
}

/**
 * On a test host page (e2e/pages/minimal.html): waits for its list, then clicks the recommendation
 * at each of `positions` in turn, waiting each time for the list to be redrawn after the click.
 */
export async function clickRecommendations(
  page: Page,
  positions: readonly number[],
  firstListTimeout?: number,
): Promise<void> {
  const recs = page.locator('#recs');
  await expect(recs).toHaveAttribute(
    'data-items',
    /,/,
    firstListTimeout ? { timeout: firstListTimeout } : {},
  );
  for (const n of positions) {
    const before = await recs.getAttribute('data-items');
    await recs.locator('button').nth(n).click();
    await expect.poll(() => recs.getAttribute('data-items')).not.toBe(before);
  }
}
