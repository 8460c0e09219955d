import { randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/** The kinds of object that get ids; the prefix makes a stray id in a log self-describing. */
export type IdKind = 'dec' | 'grt' | 'apr' | 'aud' | 'prv' | 'ses';

/** A time-ordered id (UUIDv7) with a kind prefix: sorts by creation, fine for logs and cursors. */
export function newId(kind: IdKind): string {
  return `${kind}_${uuidv7()}`;
}

/**
 * An unguessable handle id: 128 random bits, base64url. Handles are capabilities
 * to data, so their ids must not be predictable from time or sequence.
 */
export function newHandleId(): string {
  return `hdl_${randomBytes(16).toString('base64url')}`;
}

const HANDLE_ID = /^hdl_[A-Za-z0-9_-]{22}$/;

/** True when `value` has the shape of a handle id (cheap input validation before any lookup). */
export function isHandleId(value: unknown): value is string {
  return typeof value === 'string' && HANDLE_ID.test(value);
}
