/**
 * `npm run build`: the SDK and the demo into dist/.
 *   dist/sdk/hearth.js         IIFE loader for <script> tags (main thread: no tfjs)
 *   dist/sdk/hearth.mjs        ESM entry, with types in dist/sdk/types/
 *   dist/sdk/hearth-capture.js ES module the loader imports: clicks, views, dwell, SPA navigations
 *   dist/sdk/hearth-recs.js    ES module defining <hearth-recs> (uses the page's window.hearth)
 *   dist/sdk/hearth-worker.js  the engine worker (tfjs, backends, model), plus tfjs wasm binaries
 *   dist/index.html …          the demo site, which loads /sdk/hearth.js like any third-party site
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type InlineConfig } from 'vite';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sdkOut = join(root, 'dist', 'sdk');

function library(entry: string, format: 'iife' | 'es', fileName: string): InlineConfig {
  return {
    configFile: false,
    root,
    logLevel: 'warn',
    publicDir: false,
    define: { __DEV__: 'false' },
    build: {
      outDir: sdkOut,
      emptyOutDir: false,
      minify: true,
      sourcemap: false,
      lib: {
        entry: join(root, entry),
        formats: [format],
        name: 'hearthSdk',
        fileName: () => fileName,
      },
      // One file per bundle: a site hosts (or a CDN serves) exactly hearth.js and hearth-worker.js.
      rolldownOptions: { output: { codeSplitting: false } },
    },
  };
}

function copyWasm(): void {
  const require = createRequire(import.meta.url);
  const dist = dirname(
    require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'),
  );
  for (const file of readdirSync(dist).filter((f) => f.endsWith('.wasm'))) {
    copyFileSync(join(dist, file), join(sdkOut, file));
  }
}

/** Builds everything into dist/. */
export async function buildAll(): Promise<void> {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  mkdirSync(sdkOut, { recursive: true });
  await build(library('src/loader.ts', 'iife', 'hearth.js'));
  await build(library('src/index.ts', 'es', 'hearth.mjs'));
  await build(library('src/capture.ts', 'es', 'hearth-capture.js'));
  await build(library('src/recs-element.ts', 'es', 'hearth-recs.js'));
  await build(library('worker/index.ts', 'es', 'hearth-worker.js'));
  copyWasm();
  execFileSync(
    process.execPath,
    [require_('typescript/bin/tsc'), '-p', join(root, 'tsconfig.sdk.json')],
    { stdio: 'inherit', cwd: root },
  );
  await build({ configFile: join(root, 'vite.config.ts'), logLevel: 'warn' });
}

function require_(id: string): string {
  return createRequire(import.meta.url).resolve(id);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildAll();
  console.log(`built dist/ (SDK in ${sdkOut})`);
}
