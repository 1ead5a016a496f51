/**
 * Checks on the shipped files themselves (the build runs before the e2e suite):
 * - the loader every page pays for up front stays within 2 KB brotli;
 * - nothing in dist/sdk/ evaluates strings as code, so a CSP without 'unsafe-eval' works.
 */
import { expect, test } from '@playwright/test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const sdk = join(import.meta.dirname, '..', 'dist', 'sdk');
const LOADER_BROTLI_BUDGET = 2048;

function sizes(file: string): { raw: number; gzip: number; brotli: number } {
  const bytes = readFileSync(join(sdk, file));
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
    }).length,
  };
}

test('the loader hearth.js is at most 2 KB brotli', () => {
  for (const file of ['hearth.js', 'hearth.mjs', 'hearth-worker.js']) {
    const s = sizes(file);
    console.log(`${file}: ${s.raw} B raw, ${s.gzip} B gzip, ${s.brotli} B brotli`);
  }
  expect(sizes('hearth.js').brotli).toBeLessThanOrEqual(LOADER_BROTLI_BUDGET);
});

test('no shipped bundle evaluates strings as code', () => {
  const bundles = readdirSync(sdk).filter((f) => /\.m?js$/.test(f));
  expect(bundles).toEqual(expect.arrayContaining(['hearth.js', 'hearth.mjs', 'hearth-worker.js']));
  for (const file of bundles) {
    let code = readFileSync(join(sdk, file), 'utf8');
    // One known occurrence, not code: tfjs-backend-wasm embeds emscripten's Node pthread worker as
    // a string ("importScripts:function(f){(0,eval)(fs.readFileSync(f…"). It only ever runs under
    // Node's worker_threads with threads on; the SDK turns threads off and never runs in Node.
    code = code.replace(/importScripts:function\(f\)\{\(0,eval\)\(fs\.readFileSync/g, '');
    expect(code, file).not.toMatch(/\beval\b/);
    expect(code, file).not.toMatch(/\bnew Function\b|\bFunction\(/);
    expect(code, file).not.toMatch(/set(Timeout|Interval)\(\s*['"`]/);
  }
});
