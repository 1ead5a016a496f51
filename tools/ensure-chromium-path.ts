/** Where the browser tests and benchmarks find Chromium: HEARTH_CHROMIUM, else Debian's. */
export function chromiumPath(): string {
  return process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';
}
