/**
 * `npx tsx tools/icons.ts`: renders the demo's app icons (public/icons/*.png) from their SVG sources
 * in Chromium, so the PNGs the web app manifest lists are reproducible from files in the repository.
 * The maskable icon keeps its flame inside the central 80% circle that every mask leaves visible.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';
import { CHROMIUM_ARGS, chromiumPath } from './ensure-chromium-path.js';
import { isEntryPoint, runMain } from './lib/entry.js';

const dir = join(resolve(fileURLToPath(import.meta.url), '..', '..'), 'public', 'icons');

/** Each PNG: its source SVG and its size in pixels. */
export const ICONS = [
  { svg: 'icon.svg', png: 'icon-192.png', size: 192 },
  { svg: 'icon.svg', png: 'icon-512.png', size: 512 },
  { svg: 'maskable.svg', png: 'maskable-512.png', size: 512 },
] as const;

async function main(): Promise<void> {
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS],
  });
  try {
    for (const { svg, png, size } of ICONS) {
      const page = await browser.newPage({ viewport: { width: size, height: size } });
      const source = readFileSync(join(dir, svg), 'utf8');
      await page.setContent(
        `<style>html,body{margin:0;background:transparent}svg{display:block;width:${size}px;height:${size}px}</style>${source}`,
      );
      await page.screenshot({ path: join(dir, png), omitBackground: true });
      await page.close();
      console.log(`public/icons/${png} (${size} × ${size})`);
    }
  } finally {
    await browser.close();
  }
}

if (isEntryPoint(import.meta.url)) runMain(main);
