/**
 * Fetching the global model: a request that fails before any response is made once more, and a
 * failure says what went wrong (with its cause) under a stable code.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fetchManifest } from './model-source.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('fetchManifest', () => {
  it('repeats a request that failed before any response, once', async () => {
    const fetch = vi
      .fn()
      .mockRejectedValueOnce(new TypeError('fetch failed'))
      .mockResolvedValueOnce(new Response('gone', { status: 404 }));
    vi.stubGlobal('fetch', fetch);
    await expect(fetchManifest('http://127.0.0.1:9/')).rejects.toMatchObject({
      code: 'HEARTH_E_MODEL_FETCH',
      message: expect.stringContaining('HTTP 404'),
    });
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('gives up after the second failure, naming the cause', async () => {
    const failure = new TypeError('fetch failed', { cause: new Error('other side closed') });
    const fetch = vi.fn().mockRejectedValue(failure);
    vi.stubGlobal('fetch', fetch);
    await expect(fetchManifest('http://127.0.0.1:9/')).rejects.toMatchObject({
      code: 'HEARTH_E_MODEL_FETCH',
      message: expect.stringContaining('other side closed'),
    });
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('does not repeat a request the server answered', async () => {
    const fetch = vi.fn().mockResolvedValue(new Response('busy', { status: 503 }));
    vi.stubGlobal('fetch', fetch);
    await expect(fetchManifest('http://127.0.0.1:9/')).rejects.toMatchObject({
      code: 'HEARTH_E_MODEL_FETCH',
    });
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
