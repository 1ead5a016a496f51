import { describe, expect, it } from 'vitest';
import { PATHS, SITE_KEY_HEADER, weightsPath } from './routes.js';

describe('routes', () => {
  it("fills a version into the weights route's pattern", () => {
    expect(weightsPath(7)).toBe('/v1/model/7/weights');
    expect(weightsPath(12345)).toBe('/v1/model/12345/weights');
  });

  it('keeps the paths devices already call, and the header they send', () => {
    // Deployed workers fetch these; changing one breaks every device that has not updated.
    expect(PATHS).toMatchObject({
      model: '/v1/model',
      weights: '/v1/model/:version/weights',
      join: '/v1/rounds/join',
      updates: '/v1/updates',
    });
    expect(SITE_KEY_HEADER).toBe('x-hearth-key');
  });
});
