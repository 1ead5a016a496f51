/**
 * Checks of command-line flag values for the tools built on `node:util` parseArgs (which hands every
 * value over as a string). Each takes the flag's name without dashes and its text, returns undefined
 * when the flag was not given, and throws an Error naming the flag when the text does not fit.
 */

/** The flag's number, or undefined when absent (no range check: 0 and negatives may mean something). */
export function optionalNumber(text: string | undefined): number | undefined {
  return text === undefined ? undefined : Number(text);
}

/** A finite number > 0. */
export function positiveNumber(flag: string, text: string): number;
export function positiveNumber(flag: string, text: string | undefined): number | undefined;
export function positiveNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${flag} must be a positive number`);
  return value;
}

/** An integer > 0. */
export function positiveInteger(flag: string, text: string): number;
export function positiveInteger(flag: string, text: string | undefined): number | undefined;
export function positiveInteger(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`--${flag} must be a positive integer`);
  return value;
}

/** `true` or `false`, spelled out. */
export function booleanFlag(flag: string, text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (text !== 'true' && text !== 'false') throw new Error(`--${flag} true|false`);
  return text === 'true';
}

/** One of `choices`, exactly. */
export function oneOf<const C extends readonly string[]>(
  flag: string,
  text: string,
  choices: C,
): C[number];
export function oneOf<const C extends readonly string[]>(
  flag: string,
  text: string | undefined,
  choices: C,
): C[number] | undefined;
export function oneOf<const C extends readonly string[]>(
  flag: string,
  text: string | undefined,
  choices: C,
): C[number] | undefined {
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) {
    throw new Error(`--${flag} ${choices.join('|')}`);
  }
  return text as C[number];
}
