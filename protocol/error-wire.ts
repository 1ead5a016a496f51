/**
 * How a HearthError crosses the page <-> worker boundary. comlink's default 'throw' handler keeps only
 * name, message and stack, so the stable `code` would be lost; both sides register a handler built
 * from these two functions (STYLE.md: errors carry {name, code, message} across).
 */
import { HearthError, isErrorCode } from './errors.js';

/** The structured-clone-safe form of a thrown value. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

/**
 * What the replaced 'throw' handler puts on the wire (the `value` of comlink's HANDLER reply). The
 * page's tiny client (src/rpc.ts) reads it without this module's runtime code.
 */
export interface ThrownOnWire {
  readonly wire: WireError;
}

/** Flattens anything thrown into a WireError. */
export function errorToWire(value: unknown): WireError {
  if (value instanceof HearthError) {
    return { name: value.name, message: value.message, code: value.code };
  }
  if (value instanceof Error) return { name: value.name, message: value.message };
  return { name: 'Error', message: String(value) };
}

/** Rebuilds an Error (a HearthError when the code is in the catalogue) from its wire form. */
export function errorFromWire(wire: WireError): Error {
  if (isErrorCode(wire.code)) {
    const error = new HearthError(wire.code);
    error.message = wire.message;
    return error;
  }
  const error = new Error(wire.message);
  error.name = wire.name;
  return error;
}

/** The slice of comlink's TransferHandler this module needs (protocol/ has no runtime deps). */
interface ThrowHandler {
  canHandle(value: unknown): boolean;
  serialize(value: unknown): [unknown, unknown[]];
  deserialize(value: unknown): unknown;
}

/**
 * Replaces comlink's 'throw' transfer handler (pass comlink's `transferHandlers`) with one that
 * keeps `code`. Install it on both sides of the boundary.
 */
export function installErrorTransfer(handlers: Map<string, ThrowHandler>): void {
  const base = handlers.get('throw');
  if (!base) return;
  handlers.set('throw', {
    canHandle: (value) => base.canHandle(value),
    serialize: (wrapped) => {
      const thrown: ThrownOnWire = { wire: errorToWire((wrapped as { value: unknown }).value) };
      return [thrown, []];
    },
    deserialize: (serialized) => {
      throw errorFromWire((serialized as ThrownOnWire).wire);
    },
  });
}
