/**
 * The demo as an installable web app (vite.config.ts demoPwa): its manifest and icons, the service
 * worker that controls the page, an offline reload that still recommends, and a new deployment that
 * is offered to the visitor rather than swapped in.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { chromium, expect, test, type Page } from '@playwright/test';
import { CHROMIUM_ARGS, chromiumPath } from '../tools/ensure-chromium-path.js';
import { asOperator, demoUrl, serverUrl } from './helpers.js';

test.use({ serviceWorkers: 'allow' });

const root = join(import.meta.dirname, '..');

async function openDemo(page: Page): Promise<void> {
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
}

/** GETs of the API (/v1/…) the aggregation server has answered so far (its /metrics counters). */
async function serverGets(): Promise<number> {
  const text = await (await fetch(`${serverUrl()}/metrics`, { headers: asOperator() })).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('hearth_http_requests_total{method="GET",route="/v1/'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** Waits until a service worker controls the page (the first visit installs it; a reload uses it). */
async function controlled(page: Page): Promise<void> {
  await page.evaluate(() => navigator.serviceWorker.ready);
  if (!(await page.evaluate(() => navigator.serviceWorker.controller !== null))) {
    await page.reload();
  }
  expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toMatch(
    /\/sw\.js$/,
  );
}

test('manifest and icons are served with their types, and Chromium finds the app installable', async ({
  page,
  request,
}) => {
  await openDemo(page);
  const href = await page.locator('link[rel="manifest"]').getAttribute('href');
  const manifestUrl = new URL(href!, demoUrl()).href;
  const response = await request.get(manifestUrl);
  expect(response.ok()).toBe(true);
  expect(response.headers()['content-type']).toMatch(/^application\/manifest\+json/);
  const manifest = (await response.json()) as {
    name: string;
    short_name: string;
    start_url: string;
    display: string;
    theme_color: string;
    icons: { src: string; sizes: string; type: string; purpose?: string }[];
  };
  expect(manifest).toMatchObject({ start_url: '/', display: 'standalone' });
  expect(manifest.name).toBeTruthy();
  expect(manifest.theme_color).toMatch(/^#[0-9a-f]{6}$/);
  expect(manifest.icons.some((icon) => icon.purpose === 'maskable')).toBe(true);
  for (const icon of manifest.icons) {
    const image = await request.get(new URL(icon.src, manifestUrl).href);
    expect(image.ok()).toBe(true);
    expect(image.headers()['content-type']).toBe('image/png');
    // The PNG's own size is the one the manifest states (IHDR width and height).
    const bytes = await image.body();
    const [w, h] = icon.sizes.split('x').map(Number);
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([w, h]);
  }
  // Installability is judged outside incognito: a persistent profile, as a visitor's browser is.
  const profile = mkdtempSync(join(tmpdir(), 'hearth-pwa-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS],
    headless: true,
  });
  try {
    const visitor = browser.pages()[0] ?? (await browser.newPage());
    await openDemo(visitor);
    await controlled(visitor);
    const cdp = await browser.newCDPSession(visitor);
    const { installabilityErrors } = (await cdp.send('Page.getInstallabilityErrors')) as {
      installabilityErrors: unknown[];
    };
    expect(installabilityErrors).toEqual([]);
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test('an offline reload shows the site and recommends from the cached model', async ({
  page,
  context,
}) => {
  await openDemo(page);
  await controlled(page);
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  const online = await page.locator('#catalog .card').count();
  expect(online).toBeGreaterThan(6);
  // A click, so the offline list is the visitor's own, not the cold one.
  const card = page.locator('#catalog .card').nth(2);
  const clicked = (await card.getAttribute('data-hearth-item'))!;
  await card.click();
  await expect(page.locator(`#stored li[data-item="${clicked}"]`).first()).toBeVisible();

  // Online, a reload asks the server (for the catalogue and the manifest at least)...
  const before = await serverGets();
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  const gets = await serverGets();
  expect(gets).toBeGreaterThan(before);
  await context.setOffline(true);
  try {
    await page.reload();
    await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
    await expect(page.locator('h1')).toBeVisible();
    // The catalogue as last seen, titles included.
    await expect(page.locator('#catalog .card')).toHaveCount(online);
    const recs = (await page.locator('#recs').getAttribute('data-items'))!.split(',');
    expect(recs).toHaveLength(6);
    expect(recs).not.toContain(clicked);
    await expect(page.locator(`#stored li[data-item="${clicked}"]`).first()).toBeVisible();
    await expect(page.locator('#engine-status [data-field="backend"]')).not.toHaveText('none');
    // ...offline, nothing of it reached the server: the page, the SDK, the worker and the catalogue
    // came from the service worker, the model from the device's store.
    expect(await serverGets()).toBe(gets);
  } finally {
    await context.setOffline(false);
  }
});

test('a new deployment is offered with a prompt, and taken only when the visitor accepts', async ({
  page,
}) => {
  await openDemo(page);
  await controlled(page);
  await expect(page.locator('#update')).toBeHidden();
  const sw = join(root, 'dist', 'sw.js');
  const deployed = readFileSync(sw, 'utf8');
  // A new build: the service worker's bytes change.
  writeFileSync(sw, `${deployed}\n// next deployment\n`);
  try {
    const before = await page.evaluate(() => navigator.serviceWorker.controller!.scriptURL);
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
    await expect(page.locator('#update')).toBeVisible();
    // Until the visitor says yes, the page keeps the service worker it had.
    expect(await page.evaluate(() => navigator.serviceWorker.controller!.scriptURL)).toBe(before);
    const waiting = await page.evaluate(
      async () => (await navigator.serviceWorker.getRegistration())!.waiting !== null,
    );
    expect(waiting).toBe(true);
    await Promise.all([page.waitForEvent('load'), page.locator('#update-reload').click()]);
    await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
    await expect(page.locator('#update')).toBeHidden();
    const fresh = await page.evaluate(
      async () => (await navigator.serviceWorker.getRegistration())!.waiting === null,
    );
    expect(fresh).toBe(true);
  } finally {
    writeFileSync(sw, deployed);
  }
});
