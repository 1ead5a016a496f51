/**
 * Engine settings given through its options: what a caller passes, laid over frozen defaults once.
 */

/** `overrides` over `defaults` (an undefined value keeps the default), frozen; `defaults` untouched. */
export function settingsOver<T extends object>(defaults: T, overrides: Partial<T> = {}): T {
  const given = Object.entries(overrides).filter(([, value]) => value !== undefined);
  return Object.freeze({ ...defaults, ...Object.fromEntries(given) }) as T;
}
