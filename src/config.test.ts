import { describe, expect, it } from 'vitest';
import { thrownCode as code } from '../protocol/testing.js';
import { resolveOptions } from './config.js';

const base = 'https://cdn.example/sdk/hearth.js';

describe('SDK options', () => {
  it('fills defaults and resolves the worker next to the script', () => {
    expect(resolveOptions({ endpoint: 'https://fl.example' }, base)).toEqual({
      endpoint: 'https://fl.example/',
      workerUrl: 'https://cdn.example/sdk/hearth-worker.js',
      backends: ['webgpu', 'webgl', 'wasm', 'cpu'],
      uploads: true,
      uploadEvery: 20,
      capture: true,
      privacySignal: 'uploads',
      explore: false,
      debug: false,
    });
  });

  it('parses attribute strings', () => {
    const o = resolveOptions(
      {
        endpoint: 'http://127.0.0.1:8787',
        backends: 'wasm, cpu',
        uploads: 'off',
        uploadEvery: '5',
        debug: '',
        privacySignal: 'learning',
      },
      base,
    );
    expect(o.privacySignal).toBe('learning');
    expect(o.backends).toEqual(['wasm', 'cpu']);
    expect(o.uploads).toBe(false);
    expect(o.uploadEvery).toBe(5);
    expect(o.debug).toBe(true);
  });

  it('resolves a site-written worker URL against the page, the default against the script', () => {
    const page = 'https://news.example/article/1';
    const own = resolveOptions({ endpoint: '/fl', workerUrl: '/static/w.js' }, base, page);
    expect(own.workerUrl).toBe('https://news.example/static/w.js');
    expect(own.endpoint).toBe('https://news.example/fl');
    const cdn = resolveOptions({ endpoint: 'https://fl.example' }, base, page);
    expect(cdn.workerUrl).toBe('https://cdn.example/sdk/hearth-worker.js');
  });

  it('rejects bad values with HEARTH_E_CONFIG', () => {
    const bad: Record<string, unknown>[] = [
      {},
      { endpoint: 'javascript:alert(1)' },
      { endpoint: 'https://x', backends: 'webgl,gpu9000' },
      { endpoint: 'https://x', backends: '' },
      { endpoint: 'https://x', uploads: 'maybe' },
      { endpoint: 'https://x', uploadEvery: '0' },
      { endpoint: 'https://x', uploadEvery: '1e3' },
      { endpoint: 'https://x', siteKey: 'short' },
      { endpoint: 'https://x', siteKey: 'has spaces in the middle of it' },
      { endpoint: 'https://x', workerUrl: 'ftp://x/w.js' },
      { endpoint: 'https://x', privacySignal: 'everything' },
    ];
    for (const raw of bad) expect(code(() => resolveOptions(raw, base))).toBe('HEARTH_E_CONFIG');
  });
});

describe('site key', () => {
  it('is passed through when it has the server’s key shape, and absent by default', () => {
    const base = 'https://cdn.example/sdk/hearth.js';
    const o = resolveOptions({ endpoint: 'https://x', siteKey: 'site-key-0123456789abcdef' }, base);
    expect(o.siteKey).toBe('site-key-0123456789abcdef');
    expect(resolveOptions({ endpoint: 'https://x' }, base)).not.toHaveProperty('siteKey');
  });
});
