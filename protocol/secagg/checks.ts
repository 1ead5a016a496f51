/**
 * The checks both sides run on what they receive. Every message is checked before it changes any
 * state, so a malformed one is refused (HEARTH_E_SECAGG_MESSAGE) and the round goes on as if its
 * sender had dropped out.
 */
import { HearthError } from '../errors.js';
import type { KeysMessage } from './messages.js';
import { isDeviceId, type DeviceId } from './params.js';

/** Throws HEARTH_E_SECAGG_MESSAGE with `detail`. */
export function refuse(detail: string): never {
  throw new HearthError('HEARTH_E_SECAGG_MESSAGE', detail);
}

/** Throws HEARTH_E_SECAGG_STAGE unless `current` is `expected` (a spent state is never reused). */
export function expectStage(current: string, expected: string): void {
  if (current !== expected) {
    throw new HearthError('HEARTH_E_SECAGG_STAGE', `expected stage ${expected}, at ${current}`);
  }
}

/** Throws HEARTH_E_SECAGG_THRESHOLD with `detail`. */
export function tooFew(detail: string): never {
  throw new HearthError('HEARTH_E_SECAGG_THRESHOLD', detail);
}

/** True for a byte string of exactly `length` bytes. */
export function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}

/** Checks one advertised pair of public keys (32 bytes each, and not the same key twice). */
export function checkKeysMessage(message: KeysMessage): void {
  if (!isDeviceId(message?.from)) refuse('keys message without a valid sender');
  if (!isBytes(message.cPublic, 32) || !isBytes(message.sPublic, 32)) {
    refuse(`device ${message.from} sent public keys that are not 32 bytes`);
  }
}

/** Throws unless `ids` has no repeats and every id is in `allowed`. */
export function checkIdList(
  ids: readonly DeviceId[],
  allowed: ReadonlySet<DeviceId>,
  what: string,
) {
  if (!Array.isArray(ids)) refuse(`${what} is not a list`);
  if (new Set(ids).size !== ids.length) refuse(`${what} repeats a device`);
  for (const id of ids)
    if (!allowed.has(id)) refuse(`${what} names device ${id}, not allowed here`);
}
