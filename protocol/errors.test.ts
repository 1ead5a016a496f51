import { describe, expect, it } from 'vitest';
import { errorFromWire, errorToWire } from './error-wire.js';
import { ERRORS, HearthError, isErrorCode } from './errors.js';

describe('error catalogue', () => {
  it('has well-formed, unique codes with messages and plausible statuses', () => {
    const codes = Object.keys(ERRORS);
    expect(new Set(codes).size).toBe(codes.length);
    const messages = new Set<string>();
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^HEARTH_E_[A-Z0-9_]+$/);
      expect(spec.message.length).toBeGreaterThan(5);
      expect(messages.has(spec.message)).toBe(false);
      messages.add(spec.message);
      expect(spec.status === 0 || (spec.status >= 400 && spec.status < 600)).toBe(true);
    }
  });

  it('keeps code and message across the worker boundary', () => {
    const original = new HearthError('HEARTH_E_UPDATE_STALE', 'base 3, current 4');
    const revived = errorFromWire(structuredClone(errorToWire(original)));
    expect(revived).toBeInstanceOf(HearthError);
    expect((revived as HearthError).code).toBe('HEARTH_E_UPDATE_STALE');
    expect((revived as HearthError).status).toBe(409);
    expect(revived.message).toBe(original.message);
    const plain = errorFromWire(errorToWire(new TypeError('boom')));
    expect(plain.name).toBe('TypeError');
    expect(isErrorCode('HEARTH_E_NOPE')).toBe(false);
  });
});
