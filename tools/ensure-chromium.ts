/**
 * Makes sure a Chromium for the browser tests exists. Playwright cannot download its own browser on
 * these machines, so the suite drives Debian's `chromium` (or the one named by HEARTH_CHROMIUM) and
 * installs it with apt when it is missing, as CI starts on a bare machine.
 */
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromiumPath } from './ensure-chromium-path.js';

function main(): void {
  const path = chromiumPath();
  if (existsSync(path)) return;
  if (process.env.HEARTH_CHROMIUM) {
    console.error(`HEARTH_CHROMIUM points at ${path}, which does not exist`);
    process.exit(1);
  }
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  console.log(`Chromium not found at ${path}; installing Debian's chromium package…`);
  execSync(`${sudo}apt-get update -qq && ${sudo}apt-get install -y -qq chromium`, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (!existsSync(path)) {
    console.error(`apt-get finished but ${path} is still missing`);
    process.exit(1);
  }
}

main();
