/** Where the browser tests and benchmarks find Chromium: HEARTH_CHROMIUM, else Debian's. */
export function chromiumPath(): string {
  return process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium';
}

/**
 * Launch flags measured to work on these machines (ENV.md): background networking off, or Chromium
 * floods the closed network with refused connections; SwiftShader gives WebGL and WebGPU without a
 * GPU. Used by the e2e suite and the browser benchmark alike.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
];
