import { describe, expect, it, vi } from 'vitest';

describe('HearthError', () => {
  it('is one class, with the catalogue message and status once the catalogue is loaded', async () => {
    const { HearthError } = await import('./hearth-error.js');
    const catalogue = await import('./errors.js');
    expect(catalogue.HearthError).toBe(HearthError);
    const error = new HearthError('HEARTH_E_UPDATE_STALE', 'base 3, current 4');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('HearthError');
    expect(error.code).toBe('HEARTH_E_UPDATE_STALE');
    expect(error.status).toBe(409);
    expect(error.message).toBe(
      'update is based on an old model version; refetch the model: base 3, current 4',
    );
    expect(new HearthError('HEARTH_E_NOT_READY').message).toBe('Hearth is not initialised yet');
  });

  it('carries the detail alone where the catalogue is not loaded (the page)', async () => {
    vi.resetModules();
    const { HearthError } = await import('./hearth-error.js');
    const error = new HearthError('HEARTH_E_CONFIG', 'endpoint must be an http(s) URL');
    expect(error.code).toBe('HEARTH_E_CONFIG');
    expect(error.message).toBe('endpoint must be an http(s) URL');
    expect(error.status).toBe(0);
    expect(error.name).toBe('HearthError');
  });
});
