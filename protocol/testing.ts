/** Helpers for Hearth's unit tests (imported only by `*.test.ts` files; never shipped). */

/** Runs `fn` and returns the `code` of what it threw, or undefined when it did not throw. */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}
